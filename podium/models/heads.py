"""Heads: each reads the encoder's deepest feature or the decoder's finest map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from segmentation_models_pytorch.base import ClassificationHead
from torch import nn

from podium.registry import Registry

__all__ = ["HEADS", "ClassHead", "HeadSpec", "MaskHead"]

HEADS: Registry = Registry("head kind")


@dataclass(frozen=True)
class HeadSpec:
    """What a head predicts and where it reads; the engine adds loss and metrics."""

    name: str
    kind: str
    classes: int
    activation: Literal["softmax", "sigmoid", "none"] = "softmax"
    source: Literal["decoder", "encoder"] = "decoder"
    target: str = ""  # batch key of the target; empty → the head's name
    pooling: Literal["avg", "max"] = "avg"  # class heads
    dropout: float = 0.0  # class heads
    # class heads: the batch key of the mask whose per-image class presence is the target.
    presence_of: str = ""

    @property
    def target_key(self) -> str:
        return self.target or self.name

    @property
    def mode(self) -> Literal["multiclass", "multilabel", "regression"]:
        if self.kind in ("mask", "class"):
            return "multiclass" if self.activation == "softmax" else "multilabel"
        return "regression"


@dataclass(frozen=True)
class FeatureShapes:
    """Channels of the encoder's deepest map and the decoder's output; SMP's head kernel."""

    encoder_channels: int
    decoder_channels: int
    head_kernel_size: int = 3


class MaskHead(nn.Module):
    """B×C_dec×h×w decoder map → B×classes×H×W logits (conv, then bilinear to input size)."""

    kind = "mask"

    def __init__(self, spec: HeadSpec, shapes: FeatureShapes) -> None:
        super().__init__()
        if spec.source != "decoder":
            raise ValueError(f"head {spec.name!r}: a mask head reads the decoder, not the encoder")
        k = shapes.head_kernel_size
        self.conv = nn.Conv2d(shapes.decoder_channels, spec.classes, k, padding=k // 2)

    def forward(self, features: list[torch.Tensor], decoded: torch.Tensor) -> torch.Tensor:
        out = self.conv(decoded)
        # features[0] is the input itself in SMP encoders: resize to it rather than trusting
        # a fixed factor, which differs by architecture and encoder_depth.
        size = features[0].shape[-2:]
        if out.shape[-2:] != size:
            out = nn.functional.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out


@HEADS.register("mask")
def build_mask_head(spec: HeadSpec, shapes: FeatureShapes) -> nn.Module:
    return MaskHead(spec, shapes)


class ClassHead(nn.Module):
    """Deepest encoder map (or decoder map) → pooled → B×classes logits (SMP's aux head)."""

    kind = "class"

    def __init__(self, spec: HeadSpec, shapes: FeatureShapes) -> None:
        super().__init__()
        self.source = spec.source
        channels = shapes.encoder_channels if spec.source == "encoder" else shapes.decoder_channels
        self.head = ClassificationHead(channels, spec.classes, spec.pooling, spec.dropout)

    def forward(self, features: list[torch.Tensor], decoded: torch.Tensor) -> torch.Tensor:
        return self.head(features[-1] if self.source == "encoder" else decoded)


@HEADS.register("class")
def build_class_head(spec: HeadSpec, shapes: FeatureShapes) -> nn.Module:
    return ClassHead(spec, shapes)
