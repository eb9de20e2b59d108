"""Segmentation metrics from torchmetrics, macro-averaged over classes."""

from __future__ import annotations

from torchmetrics import Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MultilabelAccuracy,
    MultilabelF1Score,
    MultilabelJaccardIndex,
)

from podium.metrics.core import METRICS, MetricContext

__all__: list[str] = []


def _pick(ctx: MetricContext, multiclass, multilabel, **kwargs) -> Metric:
    if ctx.mode == "multiclass":
        return multiclass(num_classes=ctx.num_classes, ignore_index=ctx.ignore_index, **kwargs)
    if ctx.mode == "multilabel":
        return multilabel(num_labels=ctx.num_classes, ignore_index=ctx.ignore_index, **kwargs)
    raise ValueError(f"this metric needs a mask head, not {ctx.mode}")


@METRICS.register("iou")
def mean_iou(ctx: MetricContext) -> Metric:
    """Mean intersection over union across classes (mIoU)."""
    return _pick(ctx, MulticlassJaccardIndex, MultilabelJaccardIndex, average="macro")


@METRICS.register("dice")
def mean_dice(ctx: MetricContext) -> Metric:
    """Mean pixel Dice (= F1) across classes, over the whole epoch."""
    return _pick(
        ctx, MulticlassF1Score, MultilabelF1Score, average="macro", multidim_average="global"
    )


@METRICS.register("accuracy")
def pixel_accuracy(ctx: MetricContext) -> Metric:
    """Share of correctly labelled pixels."""
    return _pick(ctx, MulticlassAccuracy, MultilabelAccuracy, average="micro")
