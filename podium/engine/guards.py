"""Stop (or skip a step) on a non-finite training loss, naming the step, files and checkpoint.

Left alone, one NaN loss turns every weight into NaN through the optimizer step, and the run
goes on for hours producing nothing; the error here says which batch did it and where to
resume from.
"""

from __future__ import annotations

import math
import os
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["NonFiniteGuard", "NonFiniteLossError", "batch_names", "warn_large_targets"]

_SHOW = 16  # file names an error lists
_HALF = {
    "16": "fp16",
    "16-mixed": "fp16",
    "16-true": "fp16",
    "bf16": "bf16",
    "bf16-mixed": "bf16",
    "bf16-true": "bf16",
}
_LARGE_TARGET = 1e4


class NonFiniteLossError(RuntimeError):
    """The training loss was NaN or inf; the message names the step, batch files and checkpoint."""


def batch_names(batch: Any) -> list[str]:
    """The file stems of a batch (the dataset's "name" key), or [] when it has none."""
    names = batch.get("name") if isinstance(batch, dict) else None
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def _paths(callback: Any) -> tuple[str, str]:
    return getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")


def _last_checkpoint(trainer: pl.Trainer) -> str:
    """The newest checkpoint any ModelCheckpoint wrote ("" before the first)."""
    paths = {
        str(path)
        for callback in trainer.checkpoint_callbacks
        for path in _paths(callback)
        if path and os.path.isfile(path)
    }
    return max(sorted(paths), key=os.path.getmtime, default="")


class NonFiniteGuard(pl.Callback):
    """Checks each training loss before backward.

    max_skips 0: raise NonFiniteLossError at the first non-finite loss. max_skips N: drop the
    optimizer step of up to N such batches (their gradients are discarded), raise after that.
    Skipped steps are listed in `skipped`.
    """

    def __init__(self, max_skips: int = 0) -> None:
        if max_skips < 0:
            raise ValueError(f"max_skips must be >= 0, got {max_skips}")
        self.max_skips = max_skips
        self.skipped: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._batch_idx = -1
        self._drop_step = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._names = batch_names(batch)
        self._batch_idx = batch_idx

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        # One device sync per step; the progress bar's loss display syncs as well.
        if bool(torch.isfinite(loss.detach()).all()):
            return
        value = float(loss.detach().float().reshape(-1)[0])
        where = (
            f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{self._batch_idx})"
        )
        if len(self.skipped) < self.max_skips:
            self.skipped.append({"step": trainer.global_step, "names": list(self._names)})
            self._drop_step = True
            rank_zero_warn(
                f"non-finite training loss {value} at {where}; skipping that step "
                f"({len(self.skipped)} of {self.max_skips} allowed). Files: "
                f"{', '.join(self._names[:_SHOW]) or 'unknown'}"
            )
            return
        raise NonFiniteLossError(self._message(trainer, value, where))

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self._drop_step:
            return
        self._drop_step = False
        # Optimizers skip parameters without a gradient: no update, no moment or step change.
        # Under fp16 AMP the scaler has already unscaled and recorded the inf, so it skips too.
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = None

    def _message(self, trainer: pl.Trainer, value: float, where: str) -> str:
        names = self._names
        more = f" (+{len(names) - _SHOW} more)" if len(names) > _SHOW else ""
        files = ", ".join(names[:_SHOW]) + more
        checkpoint = _last_checkpoint(trainer)
        resume = (
            f"Last good checkpoint: {checkpoint} (resume with --resume {checkpoint})."
            if checkpoint
            else "No checkpoint has been written yet."
        )
        return (
            f"non-finite training loss ({value}) at {where}. Batch files: "
            f"{files or 'unknown (the batch has no names)'}. {resume} Check these files and "
            "their targets, lower the learning rate or enable gradient clipping; with fp16, "
            "large targets overflow (see warn_large_targets). To skip such steps instead, "
            "use NonFiniteGuard(max_skips=N)."
        )


def warn_large_targets(max_abs: float, precision: str) -> str | None:
    """A warning when regression targets this large risk half-precision overflow, else None.

    fp16 tops out at 65504, so activations and outputs near 1e4 targets overflow (seed 003 lost
    runs to this); bf16 keeps the range but only ~3 significant digits.
    """
    kind = _HALF.get(str(precision))
    if kind is None or not math.isfinite(max_abs) or abs(max_abs) < _LARGE_TARGET:
        return None
    scale = 10.0 ** math.ceil(math.log10(abs(max_abs)))
    risk = (
        "fp16 overflows past 65504, so the outputs and loss become inf/NaN"
        if kind == "fp16"
        else "bf16 keeps only ~3 significant digits, so the targets lose precision"
    )
    return (
        f"regression targets reach |{max_abs:g}| under precision {precision!r}: {risk}. "
        f"Divide the targets by {scale:g} (predict target/{scale:g}, multiply back at "
        "inference) or train with precision 32."
    )
