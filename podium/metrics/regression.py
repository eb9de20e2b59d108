"""Regression metrics from torchmetrics: mae, rmse, r2 over an epoch of valid elements.

A regression head flattens before `update`: preds and target are 1-D float tensors of the same
length N, its no-data elements already left out, so every metric accumulates over all valid
elements of all channels of the epoch (not a mean of per-batch or per-image values).
"""

from __future__ import annotations

from torchmetrics import Metric
from torchmetrics.regression import CosineSimilarity, MeanAbsoluteError, MeanSquaredError, R2Score

from podium.metrics.core import METRICS, MetricContext

__all__: list[str] = []


def _check_regression(name: str, ctx: MetricContext) -> None:
    """Raise ValueError unless the head is a regression head (dense, vector, scalar, box)."""
    if ctx.mode != "regression":
        raise ValueError(
            f"metric {name!r} needs a regression head, got a {ctx.mode} head; "
            "use 'iou', 'dice', 'accuracy' or 'auroc'"
        )


@METRICS.register("mae")
def mean_absolute_error(ctx: MetricContext) -> Metric:
    """Mean absolute error, in the target's unit.

    preds, target: N float.
    """
    _check_regression("mae", ctx)
    return MeanAbsoluteError()


@METRICS.register("rmse")
def root_mean_squared_error(ctx: MetricContext) -> Metric:
    """Root of the epoch's mean squared error (not a mean of batch RMSEs), in the target's unit.

    preds, target: N float.
    """
    _check_regression("rmse", ctx)
    return MeanSquaredError(squared=False)


@METRICS.register("r2")
def r2_score(ctx: MetricContext) -> Metric:
    """Coefficient of determination R²: 1 perfect, 0 as good as the target's mean, < 0 worse.

    preds, target: N float.
    """
    _check_regression("r2", ctx)
    return R2Score()


@METRICS.register("cosine_similarity")
def cosine_similarity(ctx: MetricContext) -> Metric:
    """Mean cosine similarity of predicted and true vectors: 1 same direction, -1 opposite.

    preds, target: N×2 (one row per vector).
    """
    _check_regression("cosine_similarity", ctx)
    return CosineSimilarity(reduction="mean")
