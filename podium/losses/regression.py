"""Regression losses (huber, smooth_l1, l1, mse, cosine) as masked means over valid elements.

pred and target share a shape, B×K or B×K×H×W; `valid` is bool of that shape or broadcastable to
it (B×1×H×W, or B×H×W / B meaning "every channel"). An all-invalid batch gives 0 with a graph.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from podium.losses.classification import align_valid, check_mode, masked_mean
from podium.losses.core import LOSSES, LossContext

__all__ = [
    "RegressionLoss",
    "cosine_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "smooth_l1_loss",
]

# Elementwise torch loss: (pred, target, reduction=...) -> tensor.
Elementwise = Callable[..., torch.Tensor]


def _masked_elementwise(
    elementwise: Elementwise,
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None,
) -> torch.Tensor:
    """Mean of `elementwise(pred, target)` over valid elements. pred, target: same shape."""
    target = target.to(pred.dtype)
    if valid is None:
        return elementwise(pred, target, reduction="mean")
    keep = align_valid(valid, pred)
    # Invalid targets are often NaN placeholders; zero them so no NaN reaches the gradient.
    target = torch.where(keep, target, 0.0)
    return masked_mean(elementwise(pred, target, reduction="none"), keep)


def huber_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, delta: float = 1.0
) -> torch.Tensor:
    """Huber loss (quadratic below `delta`, linear above), masked mean. pred, target: B×K(×H×W)."""
    return _masked_elementwise(partial(F.huber_loss, delta=delta), pred, target, valid)


def smooth_l1_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, beta: float = 1.0
) -> torch.Tensor:
    """Smooth L1 (Huber divided by `beta`), masked mean. pred, target: B×K(×H×W)."""
    return _masked_elementwise(partial(F.smooth_l1_loss, beta=beta), pred, target, valid)


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error over valid elements. pred, target: B×K(×H×W)."""
    return _masked_elementwise(F.l1_loss, pred, target, valid)


def mse_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over valid elements. pred, target: B×K(×H×W)."""
    return _masked_elementwise(F.mse_loss, pred, target, valid)


def cosine_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """1 - cosine similarity along dim 1, averaged over valid vectors.

    pred, target: B×D or B×D×H×W (e.g. D=2 direction vectors); valid: broadcastable to pred, a
    vector counts only when all its components are valid. Scale of pred does not matter.
    """
    target = target.to(pred.dtype)
    if valid is None:
        return (1.0 - F.cosine_similarity(pred, target, dim=1, eps=eps)).mean()
    keep = align_valid(valid, pred).all(dim=1)
    target = torch.where(keep.unsqueeze(1), target, 0.0)
    return masked_mean(1.0 - F.cosine_similarity(pred, target, dim=1, eps=eps), keep)


class RegressionLoss(nn.Module):
    """Module form of one of this file's functions: forward(pred, target, valid=None)."""

    def __init__(self, fn: Callable[..., torch.Tensor], **kwargs: float) -> None:
        super().__init__()
        self.fn = fn
        self.kwargs = kwargs

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """pred, target: B×K or B×K×H×W; valid: bool, broadcastable to pred."""
        return self.fn(pred, target, valid, **self.kwargs)

    def extra_repr(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.fn.__name__}({args})"


def _check_positive(name: str, what: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"loss {name!r}: {what} must be > 0, got {value}")


@LOSSES.register("huber")
def build_huber(ctx: LossContext, delta: float = 1.0) -> nn.Module:
    check_mode("huber", ctx, ("regression",))
    _check_positive("huber", "delta", delta)
    return RegressionLoss(huber_loss, delta=delta)


@LOSSES.register("smooth_l1")
def build_smooth_l1(ctx: LossContext, beta: float = 1.0) -> nn.Module:
    check_mode("smooth_l1", ctx, ("regression",))
    # beta == 0 is allowed by torch and means plain L1.
    if beta < 0:
        raise ValueError(f"loss 'smooth_l1': beta must be >= 0, got {beta}")
    return RegressionLoss(smooth_l1_loss, beta=beta)


@LOSSES.register("l1")
def build_l1(ctx: LossContext) -> nn.Module:
    check_mode("l1", ctx, ("regression",))
    return RegressionLoss(l1_loss)


@LOSSES.register("mse")
def build_mse(ctx: LossContext) -> nn.Module:
    check_mode("mse", ctx, ("regression",))
    return RegressionLoss(mse_loss)


@LOSSES.register("cosine")
def build_cosine(ctx: LossContext, eps: float = 1e-8) -> nn.Module:
    check_mode("cosine", ctx, ("regression",))
    _check_positive("cosine", "eps", eps)
    return RegressionLoss(cosine_loss, eps=eps)
