"""What every head kind shares: its config fields, what it reads, and the hooks a kind fills in.

A head kind is one module under podium/heads/ holding one `HeadBase` subclass: a pydantic
model (its YAML keys, `kind` the discriminator) whose methods say everything the kind means:
the nn.Module it builds, the dtype of its target on the device, its default loss terms and
metrics, how test-time augmentation moves and merges its output, and how that output is
written. The engine, TTA, tiles, evaluate and predict call these methods and know no kinds.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from torch import nn

from podium.geometry import D4, inverse_image, transform_image
from podium.losses import LOSSES, LossContext
from podium.metrics import METRICS, MetricContext
from podium.registry import check_kwargs_fit, check_registered

__all__ = [
    "FeatureShapes",
    "HeadBase",
    "HeadInputs",
    "LossTerm",
    "WriteContext",
    "broadcast_channels",
    "extra_channels",
    "spatial_inputs",
    "vector_inputs",
]


class LossTerm(BaseModel):
    """A loss `name` plus its weight; other keys go to the loss builder unrenamed."""

    model_config = ConfigDict(extra="allow")

    name: str
    weight: float = 1.0

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class FeatureShapes:
    """What a head can read, by channel count: the model's maps, extra inputs, earlier heads.

    encoder_channels: per depth (SMP lists the input itself as depth 0);
    inputs: extra model input → values per image; heads: earlier head → its output channels.
    """

    encoder_channels: tuple[int, ...]
    decoder_channels: int
    head_kernel_size: int = 3
    inputs: dict[str, int] = field(default_factory=dict)
    heads: dict[str, int] = field(default_factory=dict)


@dataclass
class HeadInputs:
    """At forward time: the encoder's maps, the decoder's finest map, extra inputs (B×n each),
    and the outputs of the heads that ran before (in config order)."""

    encoder: list[torch.Tensor]
    decoder: torch.Tensor | None
    inputs: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]

    @property
    def size(self) -> tuple[int, int]:
        """H×W of the model's input (SMP encoders return the input as depth 0)."""
        return tuple(self.encoder[0].shape[-2:])


@dataclass(frozen=True)
class WriteContext:
    """What writers need besides a head's output: the image and display settings."""

    image: np.ndarray  # H×W×C uint8
    palette: list[tuple[int, int, int]] | None = None
    overlay_alpha: float = 0.5
    overlays: bool = True


def extra_channels(head: HeadBase, shapes: FeatureShapes) -> int:
    """Channels a head's extra inputs and earlier heads add to what it reads."""
    return sum(shapes.inputs[n] for n in head.inputs) + sum(shapes.heads[n] for n in head.reads)


def broadcast_channels(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """B×n (or B) per-image values → B×n×H×W constant maps."""
    values = values.reshape(values.shape[0], -1).float()
    return values[:, :, None, None].expand(-1, -1, *size)


def spatial_inputs(
    base: torch.Tensor, ctx: HeadInputs, inputs: list[str], heads: list[str]
) -> torch.Tensor:
    """B×C×h×w map + extra inputs as constant channels + earlier heads' outputs (resized)."""
    size = tuple(base.shape[-2:])
    parts = [base]
    parts += [broadcast_channels(ctx.inputs[name], size).to(base.dtype) for name in inputs]
    for name in heads:
        out = ctx.outputs[name]
        if out.dim() == 4:
            resized = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            parts.append(resized.to(base.dtype))
        else:
            parts.append(broadcast_channels(out, size).to(base.dtype))
    return torch.cat(parts, dim=1) if len(parts) > 1 else base


def vector_inputs(
    base: torch.Tensor, ctx: HeadInputs, inputs: list[str], heads: list[str]
) -> torch.Tensor:
    """B×C pooled features + extra inputs + earlier heads' outputs (spatial ones averaged)."""
    parts = [base]
    parts += [ctx.inputs[name].reshape(base.shape[0], -1).to(base.dtype) for name in inputs]
    for name in heads:
        out = ctx.outputs[name]
        pooled = out.mean(dim=(-2, -1)) if out.dim() == 4 else out.reshape(out.shape[0], -1)
        parts.append(pooled.to(base.dtype))
    return torch.cat(parts, dim=1) if len(parts) > 1 else base


class HeadBase(BaseModel):
    """Fields and hooks shared by every head kind; a kind overrides what differs.

    Spatial kinds (B×K×H×W outputs) move with the image under flips and rotations, are tiled
    by sliding-window inference and move with device augmentation; image-level kinds do not.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: str = Field(description="What the head predicts (a podium.heads kind); default mask.")
    target: str | None = Field(None, description="Batch key of the target; default head name.")
    loss: list[LossTerm] = Field(
        default_factory=list, description="Weighted loss terms (default: the kind's own)."
    )
    weight: float = Field(1.0, ge=0, description="Weight of this head in the total loss.")
    metrics: list[str] | None = Field(
        None,
        description="Validation metrics by name, logged as val/<head>/<metric> "
        "(default: the kind's own).",
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="Extra model inputs (model.inputs) this head also reads: constant channels "
        "on a map, or values appended to a pooled vector.",
    )
    reads: list[str] = Field(
        default_factory=list,
        description="Earlier heads (listed before this one) whose outputs this head also reads.",
    )

    spatial: ClassVar[bool] = True
    probabilistic: ClassVar[bool] = False  # outputs are probabilities: max/gmean TTA allowed
    default_loss: ClassVar[tuple[str, ...]] = ()
    default_metrics: ClassVar[tuple[str, ...]] = ()

    # The smallest valid YAML of this kind, for contract tests, docs and benchmarks.
    example: ClassVar[dict[str, Any]] = {}

    _name: str = PrivateAttr("")

    # --- identity and config ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def target_key(self) -> str:
        return self.target or self._name

    @property
    @abstractmethod
    def out_channels(self) -> int:
        """Output channels (K of B×K×H×W or B×K)."""

    def bind(self, name: str, heads: dict[str, HeadBase], model_inputs: dict[str, int]) -> None:
        """Called once the whole `heads` block is known: name the head, check what it reads."""
        self._name = name
        for key in self.inputs:
            if key not in model_inputs:
                raise ValueError(
                    f"heads.{name}.inputs: {key!r} is not a model input; declare it under "
                    f"model.inputs (declared: {', '.join(model_inputs) or 'none'})"
                )
        earlier = list(heads)[: list(heads).index(name)]
        for key in self.reads:
            if key not in earlier:
                raise ValueError(
                    f"heads.{name}.reads: {key!r} is not a head listed before {name!r} "
                    f"(earlier heads: {', '.join(earlier) or 'none'})"
                )

    def loss_terms(self) -> list[LossTerm]:
        return self.loss or [LossTerm(name=n) for n in self.default_loss]

    def metric_names(self) -> list[str]:
        return list(self.default_metrics) if self.metrics is None else list(self.metrics)

    @field_validator("loss")
    @classmethod
    def _losses(cls, terms: list[LossTerm]) -> list[LossTerm]:
        for term in terms:
            check_kwargs_fit(LOSSES, term.name, term.kwargs, skip_first=True)
        return terms

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            check_registered(METRICS, name)
        return names

    # --- training ---------------------------------------------------------------------------

    @abstractmethod
    def build_module(self, shapes: FeatureShapes) -> nn.Module:
        """The nn.Module: forward(HeadInputs) → B×K×H×W (spatial) or B×K."""

    def loss_context(self, ignore_index: int | None) -> LossContext:
        return LossContext("regression", self.out_channels, None)

    def metric_context(self, ignore_index: int | None) -> MetricContext:
        return MetricContext("regression", self.out_channels, None, spatial=self.spatial)

    def prepare_target(self, batch: dict[str, Any]) -> None:
        """In place, on the device: the target in the dtype the loss wants (float32 here)."""
        key = self.target_key
        if key in batch:
            batch[key] = batch[key].float()

    def metric_update_args(
        self, output: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(preds, target) for the torchmetrics update; invalid elements left out."""
        output, target = output.detach().float(), target.float()
        if valid is None:
            return output.flatten(), target.flatten()
        keep = valid.bool()
        while keep.dim() < output.dim():
            keep = keep.unsqueeze(1)
        keep = keep.expand_as(output)
        return output[keep], target[keep]

    def random_target(
        self, batch: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """A batch's targets as a dataset ships them (wire dtype), for tests and benchmarks;
        {} for heads whose target is made from another head's."""
        shape = (batch, self.out_channels, *size) if self.spatial else (batch, self.out_channels)
        return {self.target_key: torch.randn(shape, generator=generator)}

    # --- inference --------------------------------------------------------------------------

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Raw output → what inference averages (probabilities, or values)."""
        return logits

    def augment(self, output: torch.Tensor, t: D4) -> torch.Tensor:
        """The output for an image → the output expected for t(image)."""
        return transform_image(output, t) if self.spatial else output

    def deaugment(self, output: torch.Tensor, t: D4) -> torch.Tensor:
        """The output for t(image) → the output in the original image's frame."""
        return inverse_image(output, t) if self.spatial else output

    def renormalize(self, merged: torch.Tensor) -> torch.Tensor:
        """After a geometric mean of probabilities: make them a distribution again if needed."""
        return merged

    def finalize(self, merged: torch.Tensor) -> torch.Tensor:
        """After averaging TTA variants, tiles or ensemble members (e.g. renormalize)."""
        return merged

    def decode(self, output: torch.Tensor) -> np.ndarray:
        """One image's K×H×W (or K) output → the array its writer stores."""
        return output.float().cpu().numpy()

    @abstractmethod
    def write(self, out_dir: Path, stem: str, decoded: np.ndarray, ctx: WriteContext) -> None:
        """Write one image's decoded output under out_dir (atomically)."""
