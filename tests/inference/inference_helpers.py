"""Shared helpers for the inference tests: tiny modules and an exactly D4-equivariant model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from podium.build import build_module
from podium.config import load_config
from podium.engine.module import PodiumModule
from podium.geometry import normalize_vectors, sort_boxes, transform_boxes, transform_vectors
from podium.heads import HeadBase, make_head


class _StandIn(HeadBase):
    """A head kind the package does not have yet (a per-pixel vector field, box): its TTA
    behaviour only, from podium.geometry, so TTA and tiles are tested on every kind the design
    names."""

    channels: int = 2

    @property
    def out_channels(self) -> int:
        return self.channels

    def build_module(self, shapes):  # pragma: no cover - never built
        raise AssertionError("stand-in heads are never built")

    def write(self, out_dir, stem, decoded, ctx):  # pragma: no cover - never written
        raise AssertionError("stand-in heads never write")


class VectorField(_StandIn):
    kind: str = "vector"

    def augment(self, x, t):
        return transform_vectors(x, t)

    def deaugment(self, x, t):
        return transform_vectors(x, t, inverse=True)

    def finalize(self, merged):
        return normalize_vectors(merged)


class Box(_StandIn):
    kind: str = "box"
    spatial: ClassVar[bool] = False

    def augment(self, x, t):
        return transform_boxes(x, t)

    def deaugment(self, x, t):
        return transform_boxes(x, t, inverse=True)

    def finalize(self, merged):
        return sort_boxes(merged)


def _named(head: HeadBase, name: str) -> HeadBase:
    head._name = name
    return head


SPECS: dict[str, HeadBase] = {
    "mask": make_head("mask", "mask", classes=3),
    "labels": make_head("labels", "mask", classes=2, activation="sigmoid"),
    "dense": make_head("dense", "dense", channels=1),
    "field": _named(VectorField(), "field"),
    "scalar": make_head("scalar", "scalar", channels=1),
    "cls": make_head("cls", "class", classes=4),
    "direction": make_head("direction", "vector"),
    "box": _named(Box(channels=4), "box"),
}


def tiny_raw(classes: int = 3) -> dict:
    """The shared tiny config on a 0.2 M-parameter encoder (data paths are never read here)."""
    from conftest import tiny_config_dict

    raw = tiny_config_dict(Path("/nonexistent"), Path("/nonexistent/runs"))
    # ResNet18 checkpoints are 45 MB: saving/loading them dominated these tests' time.
    raw["model"]["encoder_name"] = "tu-lcnet_035"
    raw["model"]["kwargs"] = {"decoder_channels": [16, 8, 8, 8, 8]}
    raw["data"]["classes"] = [f"c{i}" for i in range(classes)]
    raw["heads"]["mask"]["classes"] = classes
    return raw


def tiny_module(seed: int = 0, classes: int = 3) -> PodiumModule:
    torch.manual_seed(seed)
    return build_module(load_config(raw=tiny_raw(classes))).eval()


class PointwiseModel(nn.Module):
    """A 1×1 (or k×k) conv 'PodiumModel': {'mask': B×K×H×W}, stride 32 like the real ones."""

    def __init__(self, classes: int = 3, kernel: int = 1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, classes, kernel, padding=kernel // 2)
        self.output_stride = 32

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = inputs["image"] if isinstance(inputs, dict) else inputs
        return {"mask": self.conv(x)}


def pointwise_module(classes: int = 3, kernel: int = 1) -> PodiumModule:
    """A real PodiumModule (normalization, tasks) whose model is a single conv."""
    module = tiny_module(classes=classes)
    module.model = PointwiseModel(classes, kernel)
    return module.eval()


def conv_predict_fn(classes: int = 3, kernel: int = 1, seed: int = 0):
    """uint8 B×3×H×W → {'mask': softmax of a fixed k×k conv (zero padding)}."""
    model = PointwiseModel(classes, kernel, seed).eval()

    @torch.no_grad()
    def predict(images: torch.Tensor, inputs=None) -> dict[str, torch.Tensor]:
        return {"mask": model(images.float() / 255)["mask"].softmax(1)}

    return predict


def _gradient(f: torch.Tensor) -> torch.Tensor:
    """B×1×H×W → B×2×H×W central differences (x along W, y along H), replicate borders."""
    p = F.pad(f, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return torch.cat((gx, gy), dim=1)


def _centroid_direction(f: torch.Tensor) -> torch.Tensor:
    """B×1×H×W weights → B×2 unit vector from the image centre to the weighted centroid (px)."""
    h, w = f.shape[-2:]
    ys = torch.arange(h, dtype=f.dtype) + 0.5 - h / 2
    xs = torch.arange(w, dtype=f.dtype) + 0.5 - w / 2
    total = f.sum((1, 2, 3)).clamp_min(1e-6)
    cx = (f.sum((1, 2)) * xs).sum(-1) / total
    cy = (f.sum((1, 3)) * ys).sum(-1) / total
    v = torch.stack((cx, cy), dim=1)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-6)


def _bright_box(f: torch.Tensor) -> torch.Tensor:
    """B×1×H×W → B×4 normalized box around pixels brighter than the image mean."""
    h, w = f.shape[-2:]
    on = f[:, 0] > f.mean((1, 2, 3))[:, None, None]
    rows, cols = on.any(2).float(), on.any(1).float()
    r = torch.arange(h, dtype=f.dtype)
    c = torch.arange(w, dtype=f.dtype)
    y1 = torch.where(rows > 0, r, h).amin(1)
    y2 = torch.where(rows > 0, r + 1, 0).amax(1)
    x1 = torch.where(cols > 0, c, w).amin(1)
    x2 = torch.where(cols > 0, c + 1, 0).amax(1)
    return torch.stack((x1 / w, y1 / h, x2 / w, y2 / h), dim=1)


def equivariant_predict(images: torch.Tensor, inputs=None) -> dict[str, torch.Tensor]:
    """uint8 B×3×H×W → every head kind, each exactly equivariant (or invariant) under D4."""
    x = images.double() / 255
    f = x.mean(1, keepdim=True)
    logits = torch.cat((x, 1 - f), dim=1)[:, :3] * 3  # pointwise, so it commutes with D4
    field = _gradient(f)
    return {
        "mask": logits.softmax(1),
        "labels": torch.cat((f, x[:, :1]), dim=1).sigmoid(),
        "dense": f * 2 - 1,
        "field": field / field.norm(dim=1, keepdim=True).clamp_min(1e-6),
        "scalar": f.mean((2, 3)),
        "cls": torch.cat((logits.mean((2, 3)), f.std((2, 3))), dim=1).softmax(1),
        "direction": _centroid_direction(f),
        "box": _bright_box(f),
    }


def random_images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, h, w), generator=g, dtype=torch.uint8)


def smooth_images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Low-frequency uint8 images (upsampled noise), so resizing changes them little."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((batch, 3, max(2, h // 8), max(2, w // 8)), generator=g)
    up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (up * 255).round().to(torch.uint8)
