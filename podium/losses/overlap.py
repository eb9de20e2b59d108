"""Overlap and hard-example losses (dice, jaccard, tversky, focal, lovasz) on top of SMP.

SMP drops pixels whose target equals its `ignore_index`, so invalid pixels are written into the
target as that index: the head's ignore index, or a placeholder when it has none. Where an SMP
class cannot do that correctly (focal in multilabel mode, all-ignored batches) the module says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.losses._functional import focal_loss_with_logits
from torch import nn

from podium.losses.classification import (
    MASK_MODES,
    NO_IGNORE,
    check_class_weights,
    check_mode,
    class_targets,
    merge_validity,
    multilabel_target,
    per_class_tensor,
)
from podium.losses.core import LOSSES, LossContext

__all__ = [
    "Focal",
    "Lovasz",
    "SmpOverlapLoss",
    "focal_loss",
    "lovasz_loss",
    "mark_ignored",
    "smp_mask_loss",
]


def mark_ignored(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None,
    mode: str,
    ignore: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write `ignore` into the target wherever a pixel must not count.

    multiclass: target B×H×W int64, valid B×H×W. multilabel: target B×C×H×W float (or B×H×W
    when C == 1), valid B×H×W or B×C×H×W. Returns (target for SMP, keep bool of its shape).
    """
    if mode == "multiclass":
        target = merge_validity(target.long(), valid, ignore)
        return target, target != ignore
    target, keep = multilabel_target(logits, target, valid, ignore)
    return torch.where(keep, target, float(ignore)), keep


def smp_mask_loss(
    loss: nn.Module,
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None,
    mode: str,
    ignore: int,
    guard_empty: bool = False,
) -> torch.Tensor:
    """Run an SMP loss built with `ignore_index=ignore` with invalid pixels ignored.

    logits: B×C×H×W; target/valid as in `mark_ignored`. guard_empty returns 0 (with a graph) when
    no pixel counts, for SMP losses that give NaN gradients then; it costs one host sync.
    """
    target, keep = mark_ignored(logits, target, valid, mode, ignore)
    if guard_empty and not bool(keep.any()):
        return logits.sum() * 0.0
    return loss(logits, target)


class SmpOverlapLoss(nn.Module):
    """Wraps an SMP mask loss so that invalid pixels become the ignore index."""

    def __init__(
        self, loss: nn.Module, mode: str, ignore_index: int | None, guard_empty: bool = False
    ) -> None:
        super().__init__()
        self.loss = loss
        self.mode = mode
        self.ignore = NO_IGNORE if ignore_index is None else ignore_index
        self.guard_empty = guard_empty

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W; target: B×H×W ids or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W)."""
        return smp_mask_loss(
            self.loss, logits, target, valid, self.mode, self.ignore, self.guard_empty
        )


def _check_mask_loss(name: str, ctx: LossContext, class_weights: Sequence[float] | None) -> None:
    check_mode(name, ctx, MASK_MODES)
    check_class_weights(name, ctx, class_weights)


def _smp_overlap(
    name: str, smp_class, ctx: LossContext, class_weights, guard_empty: bool = False, **kwargs
) -> nn.Module:
    """Check, then wrap one of SMP's overlap losses (kwargs pass through unrenamed)."""
    _check_mask_loss(name, ctx, class_weights)
    ignore = NO_IGNORE if ctx.ignore_index is None else ctx.ignore_index
    loss = smp_class(
        ctx.mode, from_logits=True, ignore_index=ignore, class_weights=class_weights, **kwargs
    )
    return SmpOverlapLoss(loss, ctx.mode, ignore, guard_empty=guard_empty)


@LOSSES.register("dice")
def build_dice(
    ctx: LossContext,
    smooth: float = 0.0,
    eps: float = 1e-7,
    log_loss: bool = False,
    class_weights: list[float] | None = None,
) -> nn.Module:
    return _smp_overlap(
        "dice", smp.losses.DiceLoss, ctx, class_weights, log_loss=log_loss, smooth=smooth, eps=eps
    )


@LOSSES.register("jaccard")
def build_jaccard(
    ctx: LossContext,
    smooth: float = 0.0,
    eps: float = 1e-7,
    log_loss: bool = False,
    class_weights: list[float] | None = None,
) -> nn.Module:
    return _smp_overlap(
        "jaccard",
        smp.losses.JaccardLoss,
        ctx,
        class_weights,
        log_loss=log_loss,
        smooth=smooth,
        eps=eps,
    )


@LOSSES.register("tversky")
def build_tversky(
    ctx: LossContext,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    smooth: float = 0.0,
    eps: float = 1e-7,
    log_loss: bool = False,
    class_weights: list[float] | None = None,
) -> nn.Module:
    # SMP returns mean(loss) ** gamma; with nothing to count that is 0 ** gamma, whose gradient
    # is inf (gamma < 1) and then NaN: guard the empty case.
    return _smp_overlap(
        "tversky",
        smp.losses.TverskyLoss,
        ctx,
        class_weights,
        guard_empty=gamma != 1.0,
        log_loss=log_loss,
        smooth=smooth,
        eps=eps,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
    )


# --- focal ------------------------------------------------------------------------------------


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    mode: str = "multiclass",
    ignore_index: int | None = None,
    alpha: float | None = None,
    gamma: float = 2.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """SMP's focal loss, masked: per class a sigmoid focal term averaged over kept pixels.

    logits: B×C×H×W; target: B×H×W ids (multiclass, one-vs-rest on each channel's logit, as
    SMP does) or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W); class_weights: C.
    Same value as smp.losses.FocalLoss, but SMP's class raises on multilabel + ignore_index and
    returns NaN on an all-ignored batch, so the elementwise SMP function is reduced here.
    """
    binary, keep = class_targets(logits, target, valid, mode, ignore_index)
    per_element = focal_loss_with_logits(logits, binary, gamma=gamma, alpha=alpha, reduction="none")
    dims = (0, *range(2, logits.dim()))
    count = keep.sum(dims).to(logits.dtype)
    per_class = torch.where(keep, per_element, 0.0).sum(dims) / count.clamp_min(1.0)
    if class_weights is None:
        return per_class.mean()
    weights = class_weights.to(per_class.dtype)
    return (per_class * weights).sum() / weights.sum()


class Focal(nn.Module):
    """Focal loss (SMP's formulation) for multiclass or multilabel heads, masked."""

    def __init__(
        self,
        mode: str,
        ignore_index: int | None = None,
        alpha: float | None = None,
        gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.ignore_index = ignore_index
        self.alpha = alpha
        self.gamma = gamma
        self.register_buffer("class_weights", per_class_tensor(class_weights), persistent=False)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W; target: B×H×W ids or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W)."""
        return focal_loss(
            logits,
            target,
            valid,
            self.mode,
            self.ignore_index,
            self.alpha,
            self.gamma,
            self.class_weights,
        )


@LOSSES.register("focal")
def build_focal(
    ctx: LossContext,
    alpha: float | None = None,
    gamma: float = 2.0,
    class_weights: list[float] | None = None,
) -> nn.Module:
    _check_mask_loss("focal", ctx, class_weights)
    return Focal(ctx.mode, ctx.ignore_index, alpha, gamma, class_weights)


# --- lovasz -----------------------------------------------------------------------------------


def lovasz_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    mode: str = "multiclass",
    ignore_index: int | None = None,
    per_image: bool = False,
) -> torch.Tensor:
    """SMP's Lovász loss (softmax for multiclass, hinge for multilabel) over kept pixels.

    logits: B×C×H×W; target: B×H×W ids or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W).
    SMP's multilabel mode is one binary hinge over all channels' pixels together, not per class.
    per_image averages over images that have a kept pixel; SMP's own per_image returns an empty
    tensor when an image is all ignored (multiclass), so images are looped here.
    """
    ignore = NO_IGNORE if ignore_index is None else ignore_index
    target, keep = mark_ignored(logits, target, valid, mode, ignore)
    loss = smp.losses.LovaszLoss(mode, per_image=False, ignore_index=ignore, from_logits=True)
    if not per_image:
        # SMP gives a 0×C tensor (multiclass) when every pixel is ignored, not a scalar.
        return loss(logits, target) if bool(keep.any()) else logits.sum() * 0.0
    has_pixels = keep.flatten(1).any(1).tolist()
    terms = [loss(logits[i : i + 1], target[i : i + 1]) for i, ok in enumerate(has_pixels) if ok]
    return torch.stack(terms).mean() if terms else logits.sum() * 0.0


class Lovasz(nn.Module):
    """Lovász-softmax (multiclass) or Lovász-hinge (multilabel), masked."""

    def __init__(self, mode: str, ignore_index: int | None = None, per_image: bool = False) -> None:
        super().__init__()
        self.mode = mode
        self.ignore_index = ignore_index
        self.per_image = per_image

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W; target: B×H×W ids or B×C×H×W {0, 1}; valid: B×H×W (or B×C×H×W)."""
        return lovasz_loss(logits, target, valid, self.mode, self.ignore_index, self.per_image)


@LOSSES.register("lovasz")
def build_lovasz(ctx: LossContext, per_image: bool = False) -> nn.Module:
    check_mode("lovasz", ctx, MASK_MODES)
    return Lovasz(ctx.mode, ctx.ignore_index, per_image)
