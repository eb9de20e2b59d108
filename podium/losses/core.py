"""Registry, context and weighted combination of losses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from podium.registry import Registry

__all__ = ["LOSSES", "CombinedLoss", "LossContext", "build_loss"]

LOSSES: Registry = Registry("loss")


@dataclass(frozen=True)
class LossContext:
    """What a loss must know about the head it serves.

    multiclass: pred B×C×H×W logits, target B×H×W int64 (ignore_index allowed)
    multilabel: pred B×C×H×W logits, target B×C×H×W float in {0, 1}
    regression: pred B×K(×H×W), target same shape, float
    """

    mode: Literal["multiclass", "multilabel", "regression"]
    num_classes: int = 1
    ignore_index: int | None = None


class CombinedLoss(nn.Module):
    """Weighted sum of named loss terms; returns (total, {name: term})."""

    def __init__(self, terms: list[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = [weight for _, weight, _ in terms]
        self.terms = nn.ModuleList(module for _, _, module in terms)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Losses run in fp32 even under autocast: low-precision reductions lose small terms.
        pred = pred.float()
        parts = {name: term(pred, target, valid) for name, term in zip(self.names, self.terms)}
        total = sum(w * parts[n] for n, w in zip(self.names, self.weights))
        return total, parts


def build_loss(terms: list[tuple[str, float, dict]], ctx: LossContext) -> CombinedLoss:
    """terms: (registered name, weight, constructor kwargs)."""
    built = []
    for name, weight, kwargs in terms:
        built.append((name, weight, LOSSES.get(name)(ctx, **kwargs)))
    return CombinedLoss(built)
