"""Segmentation and image-level metrics from torchmetrics, macro-averaged over classes."""

from __future__ import annotations

from torchmetrics import Metric
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryJaccardIndex,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MultilabelAccuracy,
    MultilabelAUROC,
    MultilabelF1Score,
    MultilabelJaccardIndex,
)

from podium.metrics.core import METRICS, MetricContext

__all__: list[str] = []


def _pick(ctx: MetricContext, multiclass, multilabel, binary, **kwargs) -> Metric:
    """The torchmetrics class for the head's mode; one sigmoid output is the binary case."""
    if ctx.mode == "multiclass":
        return multiclass(num_classes=ctx.num_classes, ignore_index=ctx.ignore_index, **kwargs)
    if ctx.mode == "multilabel" and ctx.num_classes == 1:
        # torchmetrics' multilabel classes need ≥ 2 labels; binary ones have no class average.
        kwargs.pop("average", None)
        return binary(ignore_index=ctx.ignore_index, **kwargs)
    if ctx.mode == "multilabel":
        return multilabel(num_labels=ctx.num_classes, ignore_index=ctx.ignore_index, **kwargs)
    raise ValueError(f"this metric needs a mask or class head, not {ctx.mode}")


@METRICS.register("iou")
def mean_iou(ctx: MetricContext) -> Metric:
    """Mean intersection over union across classes (mIoU)."""
    return _pick(
        ctx, MulticlassJaccardIndex, MultilabelJaccardIndex, BinaryJaccardIndex, average="macro"
    )


@METRICS.register("dice")
def mean_dice(ctx: MetricContext) -> Metric:
    """Mean pixel Dice (= F1) across classes, over the whole epoch."""
    return _pick(
        ctx,
        MulticlassF1Score,
        MultilabelF1Score,
        BinaryF1Score,
        average="macro",
        multidim_average="global",
    )


@METRICS.register("accuracy")
def pixel_accuracy(ctx: MetricContext) -> Metric:
    """Share of correctly labelled pixels (class heads: of correct image-level labels)."""
    return _pick(ctx, MulticlassAccuracy, MultilabelAccuracy, BinaryAccuracy, average="micro")


@METRICS.register("auroc")
def auroc(ctx: MetricContext) -> Metric:
    """Macro ROC AUC: exact for image-level heads, 200 bins for masks (memory stays fixed)."""
    thresholds = None if not ctx.spatial else 200
    return _pick(
        ctx, MulticlassAUROC, MultilabelAUROC, BinaryAUROC, average="macro", thresholds=thresholds
    )
