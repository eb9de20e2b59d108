"""Fit a config: run folder, callbacks, Lightning Trainer, resume."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from podium.build import apply_init, build_datamodule, build_module, schedule_callbacks
from podium.build.validation import validated_samples
from podium.config import Config, load_config
from podium.engine.checkpoint_io import AtomicCheckpointIO
from podium.engine.environment import describe_environment, quiet_lightning, resolve_precision
from podium.engine.guards import NonFiniteGuard
from podium.engine.history import MetricsHistory
from podium.engine.rng_state import RngState
from podium.io import atomic_write_text

__all__ = ["make_run_dir", "resume_run_dir", "train"]


def make_run_dir(config: Config) -> Path:
    """output_dir/experiment/<timestamp>[-n]: a new folder per run, never overwritten."""
    base = Path(config.output_dir) / config.experiment
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, n = base / stamp, 1
    while run_dir.exists():
        run_dir, n = base / f"{stamp}-{n}", n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def latest_last_checkpoint(config: Config) -> Path:
    """`--resume auto`: last.ckpt of the newest run folder of this experiment, or an error."""
    base = Path(config.output_dir) / config.experiment
    runs = sorted(
        (p for p in base.glob("*/checkpoints/last.ckpt")), key=lambda p: p.parent.parent.name
    )
    if not runs:
        raise FileNotFoundError(
            f"--resume auto: no run of experiment {config.experiment!r} under {base} has a "
            "last.ckpt; start without --resume to train from scratch"
        )
    return runs[-1]


def resume_run_dir(ckpt: Path) -> Path:
    """A checkpoint lives in <run>/checkpoints/; resuming continues that run folder."""
    if not ckpt.is_file():
        raise FileNotFoundError(f"--resume: checkpoint {ckpt} does not exist")
    return ckpt.resolve().parent.parent


def _callbacks(config: Config, run_dir: Path) -> list[pl.Callback]:
    t = config.trainer
    callbacks: list[pl.Callback] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-{epoch:03d}",
            monitor=t.monitor,
            mode=t.monitor_mode,
            save_top_k=t.save_top_k,
            auto_insert_metric_name=False,
            # At train-epoch end (after validation), so the epoch's history row, which is
            # complete only then, is inside the checkpoint and a resume starts the next epoch.
            save_on_train_epoch_end=True,
        ),
        # Lightning 2.6 refreshes `save_last` only in epochs that improved the monitor; a
        # separate unmonitored checkpoint makes last.ckpt really the last epoch, every epoch.
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="last",
            save_top_k=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        ),
        LearningRateMonitor(logging_interval="epoch"),
        # Before the history, so what the schedule logs at epoch end lands in the same row.
        *schedule_callbacks(config),
        MetricsHistory(run_dir, _metric_keys(config)),
        RngState(),  # Python/NumPy/torch/CUDA and augmentation RNGs: exact resume
        NonFiniteGuard(max_skips=t.nonfinite_max_skips),
    ]
    if t.early_stopping_patience:
        callbacks.append(
            EarlyStopping(t.monitor, patience=t.early_stopping_patience, mode=t.monitor_mode)
        )
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, t.log_every_n_steps // 2)))
    return callbacks


def _metric_keys(config: Config) -> list[str]:
    return [
        f"val/{name}/{metric}"
        for name, head in config.heads.items()
        for metric in head.metric_names()
    ]


def build_trainer(config: Config, run_dir: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    t = config.trainer
    loggers = [
        # One CSV per session: Lightning deletes an existing metrics.csv when it starts.
        CSVLogger(run_dir / "logs", name="csv", version=datetime.now().strftime("%Y%m%d-%H%M%S")),
        TensorBoardLogger(run_dir, name="logs", version="tensorboard"),
    ]
    quiet_lightning()
    return pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        precision=resolve_precision(t.precision, t.accelerator),
        deterministic=t.deterministic,
        gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        logger=loggers,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        # The pseudo-label batch sampler shards itself across ranks; Lightning must not wrap it.
        use_distributed_sampler="pseudo" not in config.data.splits(),
    )


def train(config: Config, resume: Path | None = None, samples=None) -> Path:
    """Fit and return the run folder (holds config, environment, history, checkpoints).

    samples: optional (train, val) lists overriding the config's splits (k-fold runs).
    """
    if resume is not None:
        run_dir = resume_run_dir(resume)
        config = _config_for_resume(config, run_dir)
        _remove_stale_temp_files(run_dir)
    else:
        run_dir = make_run_dir(config)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    samples, pseudo = _validated(config, samples)
    atomic_write_text(run_dir / "config.yaml", config.to_yaml())
    atomic_write_text(run_dir / "environment.json", json.dumps(describe_environment(), indent=2))
    callbacks = _callbacks(config, run_dir)
    trainer = build_trainer(config, run_dir, callbacks)
    module = build_module(config)
    if resume is None:  # a resumed run restores its own weights and optimizer
        apply_init(config, module.model)
    datamodule = build_datamodule(config, samples, pseudo)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    _link_best(callbacks[0], run_dir)  # the ModelCheckpoint
    return run_dir


def _validated(config: Config, samples) -> tuple[tuple | None, list | None]:
    """The decode-check pass before training: train, val and data.pseudo's images.

    Returns the (train, val) samples and the pseudo-labelled ones to mix in (None: no
    data.pseudo, or validation off). The cache lives in the experiment folder.
    """
    if config.data.validation == "off":
        return samples, None
    cache = Path(config.output_dir) / config.experiment / ".validation"
    train_set, val_set = samples if samples is not None else (None, None)
    policy = config.data.validation
    samples = (
        validated_samples(config, "train", policy, cache, train_set),
        validated_samples(config, "val", policy, cache, val_set),
    )
    pseudo = None
    if "pseudo" in config.data.splits():
        pseudo = validated_samples(config, "pseudo", policy, cache)
    return samples, pseudo


def _remove_stale_temp_files(run_dir: Path) -> None:
    """A kill during a checkpoint write leaves `.name.*.tmp`; the real file is intact."""
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _config_for_resume(config: Config, run_dir: Path) -> Config:
    """The run's saved config wins over drift in the file, except for max_epochs."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return config
    resumed = load_config(saved)
    resumed.trainer.max_epochs = config.trainer.max_epochs
    return resumed


def _link_best(checkpoint: ModelCheckpoint, run_dir: Path) -> None:
    """best.ckpt: a hard link to the best top-k file, refreshed atomically."""
    best = checkpoint.best_model_path
    if not best:
        return
    target = run_dir / "checkpoints" / "best.ckpt"
    tmp = target.with_name(".best.ckpt.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(best, tmp)
    except OSError:  # filesystems without hard links
        import shutil

        shutil.copyfile(best, tmp)
    os.replace(tmp, target)
