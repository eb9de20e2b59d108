"""What image-level regression kinds (vector, scalar) share: a pooled map → a small MLP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from podium.heads.base import (
    FeatureShapes,
    HeadBase,
    HeadInputs,
    WriteContext,
    extra_channels,
    vector_inputs,
)
from podium.io import atomic_write_text

__all__ = ["PooledHead", "PooledMLP", "PooledSource", "pooled_feature", "source_channels"]


def source_channels(head: PooledSource, shapes: FeatureShapes) -> int:
    """Channels of the map a pooling head reads: the encoder's at `depth`, or the decoder's."""
    if head.source == "encoder":
        return shapes.encoder_channels[head.depth]
    return shapes.decoder_channels


def pooled_feature(ctx: HeadInputs, source: str, depth: int) -> torch.Tensor:
    """The map a pooling head reads at forward time (B×C×h×w)."""
    return ctx.encoder[depth] if source == "encoder" else ctx.decoder


class PooledMLP(nn.Module):
    """Encoder map at `depth` (or the decoder map) → global pool (+ extras) → Linear → ReLU →
    dropout → Linear(out): B×out."""

    def __init__(self, head: PooledHead, shapes: FeatureShapes) -> None:
        super().__init__()
        self.source, self.depth = head.source, head.depth
        self.inputs, self.reads = list(head.inputs), list(head.reads)
        channels = source_channels(head, shapes)
        pool = nn.AdaptiveAvgPool2d(1) if head.pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        self.pool = nn.Sequential(pool, nn.Flatten())
        self.mlp = nn.Sequential(
            nn.Linear(channels + extra_channels(head, shapes), head.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(head.dropout),
            nn.Linear(head.hidden, head.out_channels),
        )

    def forward(self, ctx: HeadInputs) -> torch.Tensor:
        pooled = self.pool(pooled_feature(ctx, self.source, self.depth))
        return self.mlp(vector_inputs(pooled, ctx, self.inputs, self.reads))


class PooledSource(HeadBase):
    """Fields of the image-level kinds that pool a map (class, vector, scalar): outputs B×K."""

    source: Literal["encoder", "decoder"] = Field(
        "encoder", description="Pool the encoder's map (at `depth`) or the decoder's finest map."
    )
    depth: int = Field(-1, description="Encoder depth to pool; -1 is the deepest.")
    pooling: Literal["avg", "max"] = Field("avg", description="Global pooling.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the last linear layer.")

    spatial: ClassVar[bool] = False


class PooledHead(PooledSource):
    """The image-level regression kinds: a pooled map into a small MLP; unchanged by D4 unless
    the kind says otherwise (vectors rotate)."""

    hidden: int = Field(256, ge=1, description="Width of the MLP's hidden layer.")

    def build_module(self, shapes: FeatureShapes) -> nn.Module:
        return PooledMLP(self, shapes)

    def write(self, out_dir: Path, stem: str, decoded: np.ndarray, ctx: WriteContext) -> None:
        """<head>/<stem>.json: the head's values for the image."""
        values = [round(float(v), 6) for v in decoded.ravel()]
        atomic_write_text(out_dir / self.name / f"{stem}.json", json.dumps({self.name: values}))
