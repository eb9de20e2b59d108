"""`class`: which classes of the mask head an image holds ("has defect"), from the mask itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from segmentation_models_pytorch.base import ClassificationHead
from torch import nn

from podium.heads.base import (
    FeatureShapes,
    HeadBase,
    HeadInputs,
    WriteContext,
    vector_inputs,
)
from podium.heads.pooled import PooledSource, pooled_feature, source_channels
from podium.heads.registry import HEADS
from podium.io import atomic_write_text
from podium.losses import LossContext
from podium.metrics import MetricContext

__all__ = ["ClassHead", "ClassModule", "presence_from_mask"]


def presence_from_mask(mask: torch.Tensor, mask_classes: int, out_classes: int) -> torch.Tensor:
    """Which classes each image holds, as B×out_classes float {0, 1}.

    mask: B×C×H×W multi-label {0, 1} (C = mask_classes), or B×H×W class ids (multi-class).
    Values outside the classes (an ignore index such as 255) count for no class.
    out_classes == mask_classes: one column per class; out_classes == 1: the image holds any
    class (multi-class: any class but background 0), i.e. Severstal's "has defect".
    """
    if mask.dim() == 4:  # multi-label channels
        per_class = (mask == 1).flatten(2).any(-1)
    else:
        # Every out-of-range id lands in one spare column, dropped after the scatter.
        ids = mask.flatten(1).long().clamp(0, mask_classes)
        ids = torch.where(mask.flatten(1) < 0, mask_classes, ids)
        seen = torch.zeros(mask.shape[0], mask_classes + 1, dtype=torch.bool, device=mask.device)
        per_class = seen.scatter_(1, ids, True)[:, :mask_classes]
        if out_classes == 1:
            per_class = per_class[:, 1:]  # background present says nothing about defects
    if out_classes == 1:
        per_class = per_class.any(1, keepdim=True)
    elif per_class.shape[1] != out_classes:
        raise ValueError(
            f"a class head with {out_classes} outputs cannot learn the presence of "
            f"{mask_classes} mask classes: use {mask_classes} or 1"
        )
    return per_class.float()


class ClassModule(nn.Module):
    """Deepest encoder map (or decoder map) → pooled (+ extras) → B×classes logits.

    SMP's ClassificationHead: pool, flatten, dropout, linear; extra inputs and earlier heads'
    outputs join the pooled vector before the dropout.
    """

    def __init__(self, head: ClassHead, shapes: FeatureShapes) -> None:
        super().__init__()
        self.source, self.depth = head.source, head.depth
        self.inputs, self.reads = list(head.inputs), list(head.reads)
        channels = source_channels(head, shapes)
        extra = sum(shapes.inputs[n] for n in self.inputs) + sum(
            shapes.heads[n] for n in self.reads
        )
        self.head = ClassificationHead(channels + extra, head.classes, head.pooling, head.dropout)
        if extra:  # pooling must see the map alone: the linear takes the extras too
            self.head[0] = ClassificationHead(channels, 1, head.pooling)[0]

    def forward(self, ctx: HeadInputs) -> torch.Tensor:
        feature = pooled_feature(ctx, self.source, self.depth)
        pooled = self.head[1](self.head[0](feature))
        x = vector_inputs(pooled, ctx, self.inputs, self.reads)
        for layer in list(self.head)[2:]:  # dropout, linear, activation (identity)
            x = layer(x)
        return x


@HEADS.register("class")
class ClassHead(PooledSource):
    """Targets: B×K presence, made on the device from the mask head's target (no labels)."""

    kind: Literal["class"] = "class"
    classes: int = Field(ge=1, description="The mask head's classes (one per class), or 1 (any).")
    activation: Literal["sigmoid"] = Field(
        "sigmoid", description="Always sigmoid: an image may hold several classes."
    )

    probabilistic: ClassVar[bool] = True
    default_loss: ClassVar[tuple[str, ...]] = ("bce",)
    default_metrics: ClassVar[tuple[str, ...]] = ("auroc", "accuracy")
    example: ClassVar[dict[str, Any]] = {"classes": 1}

    _mask_key: str = ""
    _mask_classes: int = 0

    @field_validator("target")
    @classmethod
    def _no_target(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("class heads read their targets from the mask head; remove the key")
        return value

    @property
    def out_channels(self) -> int:
        return self.classes

    def bind(self, name: str, heads: dict[str, HeadBase], model_inputs: dict[str, int]) -> None:
        """A class head learns the presence of its mask head's classes (one mask head)."""
        super().bind(name, heads, model_inputs)
        masks = {n: h for n, h in heads.items() if h.kind == "mask"}
        if len(masks) != 1:
            raise ValueError(
                f"heads.{name}: a class head learns which classes of the mask head an image "
                f"holds, so it needs exactly one mask head (found {len(masks)})"
            )
        ((mask_name, mask),) = masks.items()
        if self.classes not in (1, mask.classes):
            raise ValueError(
                f"heads.{name}.classes is {self.classes}: use {mask.classes} (one per class of "
                f"heads.{mask_name}) or 1 (the image holds any class)"
            )
        self._mask_key = mask.target or mask_name
        self._mask_classes = mask.classes

    @property
    def mask_key(self) -> str:
        """Batch key of the mask whose per-image class presence is this head's target."""
        return self._mask_key

    def build_module(self, shapes: FeatureShapes) -> nn.Module:
        return ClassModule(self, shapes)

    def loss_context(self, ignore_index: int | None) -> LossContext:
        return LossContext("multilabel", self.classes, None)

    def metric_context(self, ignore_index: int | None) -> MetricContext:
        return MetricContext("multilabel", self.classes, None, spatial=False)

    def prepare_target(self, batch: dict[str, Any]) -> None:
        """Before the mask is cast: its presence per image becomes this head's target."""
        if self._mask_key in batch:
            mask = batch[self._mask_key]
            batch[self.target_key] = presence_from_mask(mask, self._mask_classes, self.classes)

    def random_target(self, batch, size, generator):
        return {}  # made from the mask head's target on the device

    def metric_update_args(self, output, target, valid):
        return output.detach().float(), target.long()

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def write(self, out_dir: Path, stem: str, decoded: np.ndarray, ctx: WriteContext) -> None:
        """classes/<stem>.json: the probability of each class."""
        values = {f"class{c + 1}": round(float(p), 6) for c, p in enumerate(decoded.ravel())}
        atomic_write_text(out_dir / self.name / f"{stem}.json", json.dumps(values))
