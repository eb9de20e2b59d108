"""`mask`: per-pixel classes, softmax (one class per pixel) or sigmoid (multi-label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from podium.heads.base import (
    FeatureShapes,
    HeadBase,
    HeadInputs,
    LossTerm,
    WriteContext,
    spatial_inputs,
)
from podium.heads.registry import HEADS
from podium.io import write_mask_png, write_rgb_png
from podium.losses import LossContext
from podium.metrics import MetricContext
from podium.report.overlay import default_palette, overlay

__all__ = ["MaskHead", "MaskModule"]


class MaskModule(nn.Module):
    """Decoder's finest map (+ extra channels) → conv → B×classes×H×W logits at input size."""

    def __init__(self, head: MaskHead, shapes: FeatureShapes) -> None:
        super().__init__()
        self.inputs, self.reads = list(head.inputs), list(head.reads)
        extra = sum(shapes.inputs[n] for n in self.inputs) + sum(
            shapes.heads[n] for n in self.reads
        )
        k = shapes.head_kernel_size
        self.conv = nn.Conv2d(shapes.decoder_channels + extra, head.classes, k, padding=k // 2)

    def forward(self, ctx: HeadInputs) -> torch.Tensor:
        out = self.conv(spatial_inputs(ctx.decoder, ctx, self.inputs, self.reads))
        # Resize to the input rather than trusting a fixed factor, which differs by
        # architecture and encoder_depth.
        if out.shape[-2:] != ctx.size:
            out = F.interpolate(out, size=ctx.size, mode="bilinear", align_corners=False)
        return out


@HEADS.register("mask")
class MaskHead(HeadBase):
    """Targets: B×H×W class ids (softmax) or B×C×H×W {0, 1} (sigmoid), uint8 on the wire."""

    kind: Literal["mask"] = "mask"
    classes: int = Field(ge=1, description="Output channels: the number of classes.")
    activation: Literal["softmax", "sigmoid"] = Field(
        "softmax", description="softmax: one class per pixel; sigmoid: multi-label."
    )

    probabilistic: ClassVar[bool] = True
    default_metrics: ClassVar[tuple[str, ...]] = ("iou", "dice", "accuracy")
    example: ClassVar[dict[str, Any]] = {"classes": 3}

    def loss_terms(self) -> list[LossTerm]:
        """The YAML's terms, else ce (softmax) or bce (sigmoid)."""
        return self.loss or [LossTerm(name="bce" if self.multilabel else "ce")]

    @property
    def out_channels(self) -> int:
        return self.classes

    @property
    def multilabel(self) -> bool:
        return self.activation == "sigmoid"

    def build_module(self, shapes: FeatureShapes) -> nn.Module:
        return MaskModule(self, shapes)

    def _mode(self) -> Literal["multiclass", "multilabel"]:
        return "multilabel" if self.multilabel else "multiclass"

    def loss_context(self, ignore_index: int | None) -> LossContext:
        return LossContext(self._mode(), self.classes, ignore_index)

    def metric_context(self, ignore_index: int | None) -> MetricContext:
        return MetricContext(self._mode(), self.classes, ignore_index, spatial=True)

    def prepare_target(self, batch: dict[str, Any]) -> None:
        key = self.target_key
        if key in batch:
            batch[key] = batch[key].float() if self.multilabel else batch[key].long()

    def random_target(self, batch, size, generator):
        if self.multilabel:
            shape = (batch, self.classes, *size)
            return {self.target_key: torch.randint(0, 2, shape, generator=generator).byte()}
        shape = (batch, *size)
        return {self.target_key: torch.randint(0, self.classes, shape, generator=generator).byte()}

    def metric_update_args(self, output, target, valid):
        # torchmetrics wants integer labels; multi-label targets were cast to float for the loss.
        return output.detach().float(), target.long()

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid() if self.multilabel else logits.softmax(dim=1)

    def renormalize(self, merged: torch.Tensor) -> torch.Tensor:
        return merged if self.multilabel else merged / merged.sum(dim=1, keepdim=True)

    def decode(self, output: torch.Tensor) -> np.ndarray:
        """K×H×W probabilities → H×W class ids (softmax) or K×H×W 0/1 (sigmoid)."""
        if self.multilabel:
            return (output > 0.5).to(torch.uint8).cpu().numpy()
        return output.argmax(0).to(torch.uint8).cpu().numpy()

    def write(self, out_dir: Path, stem: str, decoded: np.ndarray, ctx: WriteContext) -> None:
        """masks/<stem>.png (class ids, PNG palette) or one 0/1 PNG per class; overlays/."""
        palette = ctx.palette or default_palette(self.classes)
        if decoded.ndim == 3:  # multi-label: one single-channel 0/1 PNG per class
            for c, layer in enumerate(decoded):
                write_mask_png(out_dir / "masks" / f"{stem}_class{c + 1}.png", layer, None)
            shown = np.where(decoded.any(0), decoded.argmax(0) + 1, 0).astype(np.uint8)
            palette, clear = [(0, 0, 0), *palette], 0  # pixels of no class stay clear
        else:
            write_mask_png(out_dir / "masks" / f"{stem}.png", decoded, palette)
            shown, clear = decoded, None
        if ctx.overlays:
            blended = overlay(ctx.image, shown, palette, ctx.overlay_alpha, clear_id=clear)
            write_rgb_png(out_dir / "overlays" / f"{stem}.png", blended)
