"""Kaggle's Severstal Steel Defect Detection metric: mean Dice over every (image, class) pair.

Dice = 2|X ∩ Y| / (|X| + |Y|), and a pair where prediction and truth are both empty scores 1.
This differs from a pixel-pooled Dice: each (image, class) pair weighs the same, so empty images
predicted empty matter as much as large defects.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["KaggleDice", "kaggle_dice_per_pair"]


def _as_bool(x: Tensor, name: str, validate: bool) -> Tensor:
    """Return x as bool; with validate, a non-bool x must contain only 0 and 1."""
    if x.dtype == torch.bool:
        return x
    # Catch probabilities or logits passed by mistake: thresholding is the caller's job.
    if validate and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must be bool or contain only 0/1; threshold it first")
    return x != 0


def kaggle_dice_per_pair(pred: Tensor, target: Tensor, *, validate_args: bool = True) -> Tensor:
    """Dice per pair for (B, C, H, W) bool/0-1 pred and target; returns (B, C) float64."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) tensors, got shape {tuple(pred.shape)}")
    p = _as_bool(pred, "pred", validate_args)
    t = _as_bool(target, "target", validate_args)
    # Integer counts are exact; float64 keeps the ratio exact enough to compare against by hand.
    inter = (p & t).sum(dim=(2, 3)).to(torch.float64)
    total = (p.sum(dim=(2, 3)) + t.sum(dim=(2, 3))).to(torch.float64)
    # Both empty -> 1 by Kaggle's definition; clamp only avoids 0/0 in the discarded branch.
    return torch.where(total == 0, torch.ones_like(total), 2 * inter / total.clamp_min(1))


class KaggleDice(Metric):
    """Accumulating Kaggle Dice; compute() gives the mean over all pairs and per-class means."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    dice_sum: Tensor
    count: Tensor

    def __init__(self, num_classes: int, *, validate_args: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.validate_args = validate_args
        # Sums and counts (not running means) so that DDP's "sum" reduction is exact.
        self.add_state(
            "dice_sum", default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "count", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of (B, C, H, W) bool/0-1 predictions and targets."""
        if preds.ndim == 4 and preds.shape[1] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} classes, got shape {tuple(preds.shape)}")
        dice = kaggle_dice_per_pair(preds, target, validate_args=self.validate_args)
        self.dice_sum += dice.sum(dim=0).to(self.dice_sum.device)
        self.count += dice.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """Return {"kaggle_dice": mean over all pairs, "kaggle_dice_class<k>": mean over images}."""
        # Division by a zero count gives NaN, which is the honest answer before any update.
        per_class = self.dice_sum / self.count
        out = {"kaggle_dice": self.dice_sum.sum() / self.count.sum()}
        for c in range(self.num_classes):
            out[f"kaggle_dice_class{c + 1}"] = per_class[c]
        return out
