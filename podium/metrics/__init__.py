"""Metric zoo by name: torchmetrics where it has the metric, Kaggle variants ourselves."""

# Importing the modules fills the registry.
from podium.metrics import kaggle_registry, regression, segmentation  # noqa: E402,F401,I001
from podium.metrics.core import METRICS, MetricContext, build_metrics

__all__ = ["METRICS", "MetricContext", "build_metrics"]
