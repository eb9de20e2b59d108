"""Metric registry and the context a metric builder receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torchmetrics import MetricCollection

from podium.registry import Registry

__all__ = ["METRICS", "MetricContext", "build_metrics"]

METRICS: Registry = Registry("metric")


@dataclass(frozen=True)
class MetricContext:
    """multiclass: preds B×C×H×W scores, target B×H×W; multilabel: target B×C×H×W {0,1}.

    spatial False: image-level heads (class), preds B×C and targets B×C / B.
    """

    mode: Literal["multiclass", "multilabel", "regression"]
    num_classes: int = 1
    ignore_index: int | None = None
    spatial: bool = True


def build_metrics(names: list[str], ctx: MetricContext) -> MetricCollection:
    return MetricCollection({name: METRICS.get(name)(ctx) for name in names})
