"""Cross-entropy family (multi-class CE, multi-label BCE) and the mask helpers all losses share.

Every loss module here has the signature `forward(pred, target, valid=None) -> scalar`; `valid`
(bool, False = exclude) and the context's `ignore_index` both remove pixels from the loss, and a
batch with nothing left to learn from gives 0 (with a graph), never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from podium.losses.core import LOSSES, LossContext

__all__ = [
    "MASK_MODES",
    "NO_IGNORE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "align_valid",
    "check_class_weights",
    "check_mode",
    "class_targets",
    "cross_entropy_loss",
    "masked_mean",
    "merge_validity",
    "multilabel_target",
    "per_class_tensor",
    "soft_bce_with_logits_loss",
]

# Placeholder when a loss has no ignore index: no real class id reaches it.
NO_IGNORE = -100

MASK_MODES = ("multiclass", "multilabel")

# What to suggest when a loss meets a head it cannot serve, by the head's mode.
_INSTEAD = {
    "multiclass": "'ce' (or 'dice', 'soft_dice', 'jaccard', 'focal', 'lovasz', 'tversky')",
    "multilabel": "'bce' (or 'dice', 'soft_dice', 'jaccard', 'focal', 'lovasz', 'tversky')",
    "regression": "'mse', 'l1', 'huber', 'smooth_l1' or 'cosine'",
}


# --- validation shared by every builder -------------------------------------------------------


def check_mode(
    name: str, ctx: LossContext, allowed: Sequence[str], instead: dict[str, str] | None = None
) -> None:
    """Raise ValueError when loss `name` cannot serve a head of `ctx.mode`, saying what to use."""
    if ctx.mode in allowed:
        return
    hint = (instead or {}).get(ctx.mode, _INSTEAD.get(ctx.mode, "another loss"))
    raise ValueError(
        f"loss {name!r} needs a {' or '.join(allowed)} head, got a {ctx.mode} head; use {hint}"
    )


def check_class_weights(
    name: str, ctx: LossContext, values: Sequence[float] | None, what: str = "class_weights"
) -> None:
    """Raise ValueError unless `values` is None or has one entry per class of the head."""
    if values is not None and len(values) != ctx.num_classes:
        raise ValueError(
            f"loss {name!r}: {what} has {len(values)} values, head has {ctx.num_classes} classes"
        )


def per_class_tensor(values: Sequence[float] | None) -> torch.Tensor | None:
    """A list of per-class numbers as a float tensor (C,), or None."""
    return None if values is None else torch.tensor(list(values), dtype=torch.float)


# --- masks ------------------------------------------------------------------------------------


def merge_validity(target: torch.Tensor, valid: torch.Tensor | None, ignore: int) -> torch.Tensor:
    """Set target to `ignore` where `valid` is False. target: B×H×W int64, valid: B×H×W."""
    if valid is None:
        return target
    return torch.where(valid.bool(), target, torch.full_like(target, ignore))


def align_valid(valid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a validity mask to `like`'s shape, as bool.

    valid: like's shape, like's shape without dim 1 (B×H×W for B×C×H×W, B for B×K), or any shape
    broadcastable to it (B×1×H×W).
    """
    valid = valid.bool()
    if valid.dim() == like.dim() - 1:
        # A per-pixel mask applies to every channel.
        valid = valid.unsqueeze(1)
    return valid.expand_as(like)


def multilabel_target(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None,
    ignore_index: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-label target as float and the elements that count.

    pred: B×C×H×W; target: B×C×H×W in {0, 1} (or B×H×W when C == 1, the single-logit binary
    case); valid: B×H×W or B×C×H×W. Entries equal to `ignore_index` count as invalid too.
    Returns (target, keep), both B×C×H×W; target is 0 where keep is False so that no garbage
    (an ignore value, a NaN) reaches an elementwise loss.
    """
    if target.dim() == pred.dim() - 1 and pred.size(1) == 1:
        target = target.unsqueeze(1)
    if valid is None:
        keep = torch.ones_like(target, dtype=torch.bool)
    else:
        keep = align_valid(valid, target)
    if ignore_index is not None:
        keep = keep & (target != ignore_index)
    target = torch.where(keep, target.to(pred.dtype), 0.0)
    return target, keep


def class_targets(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None,
    mode: str,
    ignore_index: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class {0, 1} targets for either mask mode, and the elements that count.

    multiclass: target B×H×W class ids, one-hot encoded; pixels at `ignore_index` or invalid are
    dropped from every class. multilabel: see `multilabel_target`. valid: B×H×W (or B×C×H×W in
    multilabel). Returns (target float, keep bool), both B×C×H×W; target is 0 where keep is False.
    """
    if mode == "multilabel":
        return multilabel_target(logits, target, valid, ignore_index)
    ignore = NO_IGNORE if ignore_index is None else ignore_index
    target = merge_validity(target.long(), valid, ignore)
    keep = target != ignore
    # Dropped pixels get a dummy class 0 so one_hot accepts them, then are zeroed.
    one_hot = F.one_hot(torch.where(keep, target, 0), logits.size(1)).movedim(-1, 1)
    keep = keep.unsqueeze(1).expand_as(one_hot)
    return (one_hot * keep).to(logits.dtype), keep


def masked_mean(
    values: torch.Tensor, keep: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """(Weighted) mean of `values` over the entries where `keep` is True.

    values, keep: same shape; weights: broadcastable to it. Nothing kept gives 0, still attached to
    the graph, rather than 0/0 = NaN; no host sync, so it is cheap on GPU.
    """
    w = keep.to(values.dtype)
    if weights is not None:
        w = w * weights
    # where, not multiply: a NaN or inf at a dropped entry must not leak into the sum.
    total = (torch.where(keep, values, 0.0) * w).sum()
    denom = w.sum()
    return total / torch.where(denom > 0, denom, torch.ones_like(denom))


# --- cross-entropy ----------------------------------------------------------------------------


def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = NO_IGNORE,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-class CE averaged over kept pixels like torch's 'mean' (weighted by class weights).

    logits: B×C×H×W, target: B×H×W int64, valid: B×H×W bool, class_weights: C.
    Unlike F.cross_entropy(reduction='mean'), an all-ignored batch gives 0, not NaN.
    """
    target = merge_validity(target.long(), valid, ignore_index)
    per_pixel = F.cross_entropy(
        logits,
        target,
        weight=class_weights,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction="none",
    )
    keep = target != ignore_index
    if class_weights is None:
        return masked_mean(per_pixel, keep)
    # torch's weighted 'mean' divides by the summed weights of the targets; per_pixel is
    # already weighted, so only the denominator needs them.
    pixel_weight = class_weights.to(logits.dtype)[torch.where(keep, target, 0)]
    total = per_pixel.sum()
    denom = (pixel_weight * keep).sum()
    return total / torch.where(denom > 0, denom, torch.ones_like(denom))


class CrossEntropy(nn.Module):
    """Multi-class cross-entropy with class weights, label smoothing and ignore index."""

    def __init__(
        self,
        ignore_index: int | None,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.ignore_index = NO_IGNORE if ignore_index is None else ignore_index
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", per_class_tensor(class_weights), persistent=False)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W, target: B×H×W int64, valid: B×H×W bool."""
        return cross_entropy_loss(
            logits, target, self.ignore_index, self.class_weights, self.label_smoothing, valid
        )


@LOSSES.register("ce")
def build_cross_entropy(
    ctx: LossContext, class_weights: list[float] | None = None, label_smoothing: float = 0.0
) -> nn.Module:
    check_mode("ce", ctx, ("multiclass",), {"multilabel": "'bce'"})
    check_class_weights("ce", ctx, class_weights)
    return CrossEntropy(ctx.ignore_index, class_weights, label_smoothing)


# --- binary cross-entropy ---------------------------------------------------------------------


def _per_channel(values: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """A (C,) tensor shaped C×1×…×1 so it broadcasts along dim 1 of `like` (B×C×H×W or B×C)."""
    if values is None:
        return None
    return values.to(like.dtype).reshape(-1, *([1] * (like.dim() - 2)))


def soft_bce_with_logits_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    smooth_factor: float | None = None,
    pos_weight: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """BCE-with-logits with SMP's label smoothing, averaged over valid elements.

    logits: B×C×H×W (or B×C); target: same shape in {0, 1} (B×H×W when C == 1); valid: B×H×W
    or B×C×H×W; pos_weight, class_weights: C. Smoothing is SMP's / pytorch-toolbelt's
    `t * (1 - s) + (1 - t) * s` (s=0.1: 1 -> 0.9, 0 -> 0.1). The mean divides by the
    (class-weighted) number of valid elements, so ignoring pixels does not shrink the loss.
    """
    target, keep = multilabel_target(logits, target, valid, ignore_index)
    if smooth_factor is not None:
        target = (1 - target) * smooth_factor + target * (1 - smooth_factor)
    # pos_weight must broadcast along the class dim; torch broadcasts it along the last one.
    per_element = F.binary_cross_entropy_with_logits(
        logits, target, pos_weight=_per_channel(pos_weight, logits), reduction="none"
    )
    return masked_mean(per_element, keep, _per_channel(class_weights, logits))


class BinaryCrossEntropy(nn.Module):
    """Multi-label (or single-logit binary) BCE with smoothing, pos_weight, class weights, masks."""

    def __init__(
        self,
        ignore_index: int | None = None,
        smooth_factor: float | None = None,
        pos_weight: Sequence[float] | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth_factor = smooth_factor
        self.register_buffer("pos_weight", per_class_tensor(pos_weight), persistent=False)
        self.register_buffer("class_weights", per_class_tensor(class_weights), persistent=False)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """logits: B×C×H×W, target: B×C×H×W float {0, 1}, valid: B×H×W or B×C×H×W bool."""
        return soft_bce_with_logits_loss(
            logits,
            target,
            valid,
            self.smooth_factor,
            self.pos_weight,
            self.class_weights,
            self.ignore_index,
        )


@LOSSES.register("bce")
def build_binary_cross_entropy(
    ctx: LossContext,
    smooth_factor: float | None = None,
    pos_weight: float | list[float] | None = None,
    class_weights: list[float] | None = None,
) -> nn.Module:
    check_mode("bce", ctx, ("multilabel",), {"multiclass": "'ce'"})
    if isinstance(pos_weight, (int, float)):
        pos_weight = [float(pos_weight)] * ctx.num_classes
    check_class_weights("bce", ctx, pos_weight, what="pos_weight")
    check_class_weights("bce", ctx, class_weights)
    if smooth_factor is not None and not 0.0 <= smooth_factor < 0.5:
        raise ValueError(f"loss 'bce': smooth_factor must be in [0, 0.5), got {smooth_factor}")
    return BinaryCrossEntropy(ctx.ignore_index, smooth_factor, pos_weight, class_weights)
