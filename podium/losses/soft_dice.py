"""Weighted soft dice, adapted from pytorch-toolbelt's DiceLoss (the Aeroscapes winner's loss).

Per class, intersection and cardinality are summed over the whole batch (toolbelt's
dims=(0, 2)); a class with no target pixel in the batch has its term zeroed, as toolbelt does,
but still counts in the (weighted) average, so absent classes dilute rather than vanish.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from podium.losses.classification import (
    MASK_MODES,
    align_valid,
    check_class_weights,
    check_mode,
    class_targets,
    per_class_tensor,
)
from podium.losses.core import LOSSES, LossContext

__all__ = ["SoftDice", "soft_dice_loss"]


def soft_dice_loss(
    probs: torch.Tensor,
    one_hot_target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    smooth: float = 0.0,
    eps: float = 1e-7,
    valid: torch.Tensor | None = None,
    log_loss: bool = False,
) -> torch.Tensor:
    """Class-weighted soft dice loss over the batch.

    probs: B×C×H×W (softmax or sigmoid output); one_hot_target: B×C×H×W in {0, 1};
    class_weights: C (uniform if None); valid: B×H×W or B×C×H×W bool, False removes a pixel from
    both prediction and target. Per class: 1 - (2·I + smooth) / max(|P| + |T| + smooth, eps)
    (or -log(dice) with log_loss), zeroed for classes absent from the target.
    """
    target = one_hot_target.to(probs.dtype)
    if valid is not None:
        keep = align_valid(valid, probs)
        # where, not multiply: garbage at dropped pixels must not reach the sums.
        probs = torch.where(keep, probs, 0.0)
        target = torch.where(keep, target, 0.0)
    dims = (0, *range(2, probs.dim()))
    intersection = (probs * target).sum(dims)
    cardinality = (probs + target).sum(dims)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    loss = -torch.log(dice.clamp_min(eps)) if log_loss else 1.0 - dice
    # Dice is undefined for a class with no target pixel; toolbelt drops its term.
    loss = loss * (target.sum(dims) > 0).to(loss.dtype)
    if class_weights is None:
        return loss.mean()
    weights = class_weights.to(loss.dtype)
    return (loss * weights).sum() / weights.sum()


class SoftDice(nn.Module):
    """Soft dice from logits: softmax + one-hot targets (multiclass) or sigmoid (multilabel)."""

    def __init__(
        self,
        mode: str,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        smooth: float = 0.0,
        eps: float = 1e-7,
        log_loss: bool = False,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.eps = eps
        self.log_loss = log_loss
        self.register_buffer("class_weights", per_class_tensor(class_weights), persistent=False)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W; target: B×H×W ids or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W)."""
        one_hot, keep = class_targets(logits, target, valid, self.mode, self.ignore_index)
        # log-then-exp as toolbelt: keeps a gradient at saturated logits.
        if self.mode == "multiclass":
            probs = logits.log_softmax(dim=1).exp()
        else:
            probs = F.logsigmoid(logits).exp()
        return soft_dice_loss(
            probs, one_hot, self.class_weights, self.smooth, self.eps, keep, self.log_loss
        )


@LOSSES.register("soft_dice")
def build_soft_dice(
    ctx: LossContext,
    class_weights: list[float] | None = None,
    smooth: float = 0.0,
    eps: float = 1e-7,
    log_loss: bool = False,
) -> nn.Module:
    check_mode("soft_dice", ctx, MASK_MODES)
    check_class_weights("soft_dice", ctx, class_weights)
    return SoftDice(ctx.mode, ctx.ignore_index, class_weights, smooth, eps, log_loss)
