"""`dense`: per-pixel regression (height, magnitude, ...), B×k×H×W, no-data pixels excluded."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from pydantic import Field
from torch import nn

from podium.heads.base import (
    FeatureShapes,
    HeadBase,
    HeadInputs,
    WriteContext,
    spatial_inputs,
)
from podium.heads.registry import HEADS
from podium.io import atomic_write_bytes, write_rgb_png

__all__ = ["ACTIVATIONS", "DenseHead", "DenseModule", "colorize_values", "upsample_block"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "none": nn.Identity,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def upsample_block(channels_in: int, channels_out: int) -> nn.Sequential:
    """Bilinear ×2 → 3×3 conv → batch norm → ReLU: one step towards stride 1."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class DenseModule(nn.Module):
    """Decoder's finest map (+ extra channels) → [upsample blocks] → conv → activation."""

    def __init__(self, head: DenseHead, shapes: FeatureShapes) -> None:
        super().__init__()
        self.inputs, self.reads = list(head.inputs), list(head.reads)
        extra = sum(shapes.inputs[n] for n in self.inputs) + sum(
            shapes.heads[n] for n in self.reads
        )
        width = shapes.decoder_channels + extra
        blocks = []
        for _ in range(head.upsample_blocks):
            blocks.append(upsample_block(width, head.block_channels))
            width = head.block_channels
        self.blocks = nn.Sequential(*blocks)
        k = shapes.head_kernel_size
        self.conv = nn.Conv2d(width, head.channels, k, padding=k // 2)
        self.activation = ACTIVATIONS[head.activation]()
        self.mean, self.std = head.target_mean, head.target_std

    def forward(self, ctx: HeadInputs) -> torch.Tensor:
        x = self.blocks(spatial_inputs(ctx.decoder, ctx, self.inputs, self.reads))
        out = self.conv(x)
        if out.shape[-2:] != ctx.size:
            out = F.interpolate(out, size=ctx.size, mode="bilinear", align_corners=False)
        # The activation applies to target units (softplus keeps heights ≥ 0, ...).
        return self.activation(out * self.std + self.mean)


def colorize_values(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """H×W floats → H×W×3 uint8 through a matplotlib colour map, min..max of the finite values."""
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    scaled = np.where(finite, (values - low) / max(high - low, 1e-12), 0.0)
    return (colormaps[cmap](scaled)[..., :3] * 255).round().astype(np.uint8)


@HEADS.register("dense")
class DenseHead(HeadBase):
    """Targets: B×k×H×W float32, with `valid_<target>` (B×H×W bool) for no-data pixels."""

    kind: Literal["dense"] = "dense"
    channels: int = Field(1, ge=1, description="Values per pixel (k of B×k×H×W).")
    activation: Literal["none", "relu", "softplus", "sigmoid", "tanh"] = Field(
        "none", description="Applied to the output (e.g. softplus for values ≥ 0)."
    )
    upsample_blocks: int = Field(
        0,
        ge=0,
        description="Bilinear ×2 → conv → norm → ReLU blocks after the decoder, to reach stride "
        "1 from decoders that stop at stride 2^n (FPN: 2 blocks).",
    )
    block_channels: int = Field(32, ge=1, description="Channels of the upsample blocks.")
    target_mean: float = Field(
        0.0,
        description="Typical target value: the net predicts (value - mean) / std, so it "
        "works near 0 whatever the unit (e.g. metres of elevation); outputs are in target units.",
    )
    target_std: float = Field(1.0, gt=0, description="Typical spread of the target (see mean).")

    default_loss: ClassVar[tuple[str, ...]] = ("huber",)
    default_metrics: ClassVar[tuple[str, ...]] = ("mae", "rmse", "r2")
    example: ClassVar[dict[str, Any]] = {"channels": 2}

    @property
    def out_channels(self) -> int:
        return self.channels

    def build_module(self, shapes: FeatureShapes) -> nn.Module:
        return DenseModule(self, shapes)

    def random_target(self, batch, size, generator):
        out = super().random_target(batch, size, generator)
        out[f"valid_{self.target_key}"] = torch.rand((batch, *size), generator=generator) > 0.1
        return out

    def write(self, out_dir: Path, stem: str, decoded: np.ndarray, ctx: WriteContext) -> None:
        """<head>/<stem>.tif (float32, k×H×W) and, with overlays, a colour-mapped PNG."""
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, decoded.astype(np.float32))
        atomic_write_bytes(out_dir / self.name / f"{stem}.tif", buffer.getvalue())
        if ctx.overlays:
            write_rgb_png(
                out_dir / "overlays" / f"{stem}_{self.name}.png", colorize_values(decoded[0])
            )
