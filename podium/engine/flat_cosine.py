"""Flat LR until the metric stalls, revert to the best epoch, cosine-anneal, then stop.

Phase "flat" holds every param group at the LR it had when training started. After each
validation the best monitored value is tracked with in-memory CPU copies of the best model
weights and optimizer state (the seed restored a checkpoint, which includes both). When
`patience` validations pass without improvement, or after `max_flat_epochs` validations, the
model and optimizer are restored bit-exactly to the best epoch and phase "anneal" starts: every
batch, each group's LR follows a half-cosine from its max to `min_lr` scaled alike (the group
at the optimizer's base lr ends at exactly `min_lr`), reached on the last batch of
`anneal_epochs` epochs; then the trainer is asked to stop. Per batch rather than per epoch:
smoother, and the first anneal epoch already starts lowering the LR.

Use it with a `constant` schedule (or none): it sets the LR itself before every batch.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from podium.optim.schedules import cosine_factor, min_lr_ratio

__all__ = ["FlatThenCosineWithRevert", "cpu_copy"]

_STATE_KEYS = (
    "phase",
    "best",
    "best_epoch",
    "bad_epochs",
    "flat_epochs",
    "anneal_step",
    "anneal_steps",
    "max_lrs",
    "best_model",
    "best_optimizer",
)


def cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor cloned to CPU (dicts, lists and tuples recursed)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether value beats best by more than min_delta (NaN never does)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class FlatThenCosineWithRevert(Callback):
    """Flat LR until the monitored metric stalls, revert to the best epoch, cosine-anneal, stop."""

    def __init__(
        self,
        patience: int,
        max_flat_epochs: int,
        anneal_epochs: int,
        min_lr: float = 0.0,
        monitor: str = "val/loss",
        mode: Literal["min", "max"] = "min",
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 1 or max_flat_epochs < 1 or anneal_epochs < 1:
            raise ValueError("patience, max_flat_epochs and anneal_epochs must be >= 1")
        self.patience, self.max_flat_epochs = patience, max_flat_epochs
        self.anneal_epochs = anneal_epochs
        self.min_lr, self.monitor, self.mode, self.min_delta = min_lr, monitor, mode, min_delta
        self.phase: Literal["flat", "anneal"] = "flat"
        self.best: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0  # validations since the last improvement
        self.flat_epochs = 0  # validations seen in the flat phase
        self.anneal_step = 0  # batches trained in the anneal phase
        self.anneal_steps = 0  # batches the anneal lasts; set at the switch
        self.max_lrs: list[float] | None = None
        self.best_model: dict[str, Any] | None = None
        self.best_optimizer: dict[str, Any] | None = None
        self._min_ratio = 0.0
        self._epoch_phase = "flat"
        self._last_lrs: list[float] = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def lr_factor(self) -> float:
        """The LR multiplier for the next batch: 1 when flat, the cosine when annealing."""
        if self.phase == "flat":
            return 1.0
        return cosine_factor((self.anneal_step + 1) / self.anneal_steps, self._min_ratio)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        if self.max_lrs is None:  # a resumed run brings them from the checkpoint
            self.max_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self._min_ratio = min_lr_ratio(optimizer, self.min_lr)
        needed = self.max_flat_epochs + self.anneal_epochs
        if trainer.max_epochs is not None and 0 <= trainer.max_epochs < needed:
            rank_zero_warn(
                f"max_epochs={trainer.max_epochs} may end the run before annealing does "
                f"(flat up to {self.max_flat_epochs} + anneal {self.anneal_epochs} epochs)"
            )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_phase = self.phase

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        factor = self.lr_factor()
        groups = trainer.optimizers[0].param_groups
        for group, max_lr in zip(groups, self.max_lrs or [], strict=True):
            group["lr"] = max_lr * factor
        self._last_lrs = [float(g["lr"]) for g in groups]

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.phase == "anneal":
            self.anneal_step += 1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.phase != "flat":
            return
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(trainer.callback_metrics) or "nothing"
            raise RuntimeError(f"monitored {self.monitor!r} was not logged; logged: {logged}")
        self._track(float(trainer.callback_metrics[self.monitor]), trainer, pl_module)
        if self.bad_epochs >= self.patience or self.flat_epochs >= self.max_flat_epochs:
            self._switch_to_anneal(trainer, pl_module)

    def _track(self, value: float, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Count one flat validation; on improvement snapshot the weights and optimizer."""
        self.flat_epochs += 1
        if not _improved(value, self.best, self.mode, self.min_delta):
            self.bad_epochs += 1
            return
        self.best, self.best_epoch, self.bad_epochs = value, trainer.current_epoch, 0
        self.best_model = cpu_copy(pl_module.model.state_dict())
        self.best_optimizer = cpu_copy(trainer.optimizers[0].state_dict())

    def _switch_to_anneal(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Restore the best weights and optimizer state exactly, then start the cosine."""
        if self.best_model is None or self.best_optimizer is None:
            raise RuntimeError("no best epoch to revert to: the monitored value was NaN throughout")
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            raise ValueError("FlatThenCosineWithRevert needs a train loader with a known length")
        pl_module.model.load_state_dict(self.best_model)
        # load_state_dict would alias CPU tensors of the snapshot; the copy keeps it pristine.
        trainer.optimizers[0].load_state_dict(cpu_copy(self.best_optimizer))
        self.best_optimizer = None  # no longer needed: the anneal never reverts again
        self.phase, self.anneal_step = "anneal", 0
        self.anneal_steps = self.anneal_epochs * int(batches)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        opts = {"on_step": False, "on_epoch": True, "logger": True}
        pl_module.log("phase", float(self._epoch_phase == "anneal"), **opts)
        groups = trainer.optimizers[0].param_groups
        for i, (group, lr) in enumerate(zip(groups, self._last_lrs, strict=False)):
            pl_module.log(f"lr-{group.get('name', f'pg{i}')}", lr, **opts)
        if self.phase == "anneal" and self.anneal_step >= self.anneal_steps:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _STATE_KEYS}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key in _STATE_KEYS:
            setattr(self, key, state_dict[key])
