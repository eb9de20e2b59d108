"""Registers "kaggle_dice" (Severstal's mean Dice over (image, class) pairs) in METRICS.

The engine hands a metric the raw head output, so this wrapper thresholds it inside `update`:
sigmoid mask-head logits or probabilities, B×C×H×W, against B×C×H×W {0, 1} targets. Import this
module to register the metric.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchmetrics import Metric

from podium.metrics.core import METRICS, MetricContext
from podium.metrics.kaggle import KaggleDice

__all__ = ["KaggleDiceFromScores", "scores_to_mask"]

Inputs = Literal["auto", "logits", "probs"]


def scores_to_mask(preds: Tensor, threshold: float = 0.5, inputs: Inputs = "auto") -> Tensor:
    """B×C×H×W logits or probabilities → bool mask (prob >= threshold); bool/int pass through.

    "auto" reads a float tensor as logits when any value lies outside [0, 1] (as torchmetrics
    does): a whole batch of logits inside [0, 1] is practically impossible for a trained head.
    """
    if not preds.is_floating_point():
        return preds  # already binary; KaggleDice checks it holds only 0/1
    if inputs == "auto":
        inputs = "logits" if bool(((preds < 0) | (preds > 1)).any()) else "probs"
    if inputs == "logits":
        preds = torch.sigmoid(preds)
    elif inputs != "probs":
        raise ValueError(f"inputs must be 'auto', 'logits' or 'probs', got {inputs!r}")
    return preds >= threshold


class KaggleDiceFromScores(KaggleDice):
    """KaggleDice that thresholds sigmoid scores itself; targets equal to ignore_index count
    for neither prediction nor truth."""

    def __init__(
        self,
        num_classes: int,
        *,
        threshold: float = 0.5,
        inputs: Inputs = "auto",
        ignore_index: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(num_classes, **kwargs)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold
        self.inputs = inputs
        self.ignore_index = ignore_index

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of B×C×H×W logits/probabilities and B×C×H×W {0, 1} targets."""
        mask = scores_to_mask(preds, self.threshold, self.inputs)
        if self.ignore_index is not None:
            ignored = target == self.ignore_index
            mask = (mask != 0) & ~ignored
            target = (target != 0) & ~ignored
        super().update(mask, target)


@METRICS.register("kaggle_dice")
def kaggle_dice(ctx: MetricContext) -> Metric:
    """Kaggle's Severstal mean Dice (empty-empty pairs score 1) for a sigmoid mask head."""
    if ctx.mode != "multilabel":
        raise ValueError(
            f"metric 'kaggle_dice' needs a sigmoid (multi-label) mask head, not {ctx.mode}"
        )
    return KaggleDiceFromScores(ctx.num_classes, ignore_index=ctx.ignore_index)
