"""LR sweep (seed 000): short runs from the same initial weights over an exponential LR range.

Unlike a one-run LR range test, every LR starts from identical weights and is judged by the
validation loss after a few steps: the suggested LR is where that loss falls fastest.
"""

from __future__ import annotations

import copy
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from tqdm import tqdm

from podium.build import build_datamodule, build_module
from podium.config import Config
from podium.engine.environment import quiet_lightning, resolve_precision
from podium.io import atomic_write_text

__all__ = ["SweepPoint", "lr_sweep", "suggest_lr"]


@dataclass
class SweepPoint:
    lr: float
    train_loss: float
    val_loss: float


def lr_sweep(
    config: Config,
    out_dir: Path,
    lr_min: float = 1e-5,
    lr_max: float = 1e-1,
    num: int = 8,
    steps: int = 20,
    val_batches: int = 5,
) -> tuple[list[SweepPoint], float]:
    """Train `steps` batches per LR from the same weights; write CSV, PNG and the suggestion."""
    pl.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    initial = build_module(config).state_dict()
    lrs = np.geomspace(lr_min, lr_max, num)
    points = []
    for lr in tqdm(lrs, desc="lr-sweep", unit="lr"):
        points.append(_short_run(config, datamodule, initial, float(lr), steps, val_batches))
    suggestion = suggest_lr(points)
    _write(points, suggestion, out_dir)
    return points, suggestion


def _short_run(config, datamodule, initial, lr, steps, val_batches) -> SweepPoint:
    cfg = config.model_copy(deep=True)
    cfg.optimizer.lr = lr
    _scale_group_lrs(cfg, lr / config.optimizer.lr)
    cfg.schedule = type(cfg.schedule)(name="constant")
    module = build_module(cfg)
    module.load_state_dict(copy.deepcopy(initial))
    quiet_lightning()
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=-1,
        limit_val_batches=val_batches,
        num_sanity_val_steps=0,
        val_check_interval=None,
        check_val_every_n_epoch=None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator),
    )
    pl.seed_everything(config.seed, workers=True, verbose=False)  # same batches for every LR
    trainer.fit(module, datamodule=datamodule)
    train_loss = float(trainer.callback_metrics.get("train/loss_step", math.nan))
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    return SweepPoint(lr, train_loss, float(val["val/loss"]))


def _scale_group_lrs(cfg: Config, factor: float) -> None:
    """Per-part LRs (encoder/decoder/heads) keep their ratio to the base LR."""
    groups = cfg.optimizer.kwargs.get("lr_groups")
    if groups:
        cfg.optimizer.lr_groups = {k: v * factor for k, v in groups.items()}


def suggest_lr(points: list[SweepPoint]) -> float:
    """The LR where validation loss falls fastest per log-LR step (finite points only)."""
    good = [p for p in points if math.isfinite(p.val_loss)]
    if len(good) < 2:
        return good[0].lr if good else math.nan
    log_lr = np.log10([p.lr for p in good])
    slope = np.gradient(np.array([p.val_loss for p in good]), log_lr)
    return good[int(np.argmin(slope))].lr


def _write(points: list[SweepPoint], suggestion: float, out_dir: Path) -> None:
    from podium.report.sweep_plot import plot_sweep

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["lr", "train_loss", "val_loss"])
    writer.writerows([p.lr, p.train_loss, p.val_loss] for p in points)
    atomic_write_text(out_dir / "lr_sweep.csv", buffer.getvalue())
    atomic_write_text(out_dir / "suggested_lr.txt", f"{suggestion:.6g}\n")
    plot_sweep(points, suggestion, out_dir / "lr_sweep.png")
