"""`augmentation.device`: cheap augmentations run on the training batch, on its device.

The workers' albumentations pipeline runs first, per image on the CPU; these ops then run on the
collated uint8 batch after it reached the device, before normalization and the forward. Each op
decides per sample (probability `p`) and, for geometric ops, transforms the image and every
spatial target of that sample alike (multi-class B×H×W masks, multi-label B×C×H×W masks, their
`valid_*` masks), so labels stay aligned pixel for pixel.

Geometric ops are elements of the dihedral group D4 (podium.geometry.D4, the TTA's own
representation): hflip, vflip, rot90, transpose, d4. Those that turn H×W into W×H (rot90,
transpose, d4) need square training crops.

Photometric ops change the image only. They work on float pixel values in 0..255, i.e. after
the uint8 → float conversion and before normalization, and clamp to 0..255 like uint8 arithmetic
does (without rounding to integers). Parameters follow albumentations (RandomBrightnessContrast,
GaussNoise): limits are fractions of 255.

Randomness: the per-sample decisions come from a CPU generator (no device sync) and noise from a
generator on the batch's device, both seeded from (config seed, epoch, batch index, rank), so a
run repeats, and a resumed run sees the same augmentations, without storing generator state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from podium.geometry import D4, transform_image
from podium.registry import Registry, check_kwargs_fit

__all__ = [
    "DEVICE_AUGMENTATIONS",
    "BrightnessContrast",
    "DeviceAugment",
    "GaussianNoise",
    "GeometricOp",
    "build_device_ops",
    "check_square_crops",
]

DEVICE_AUGMENTATIONS: Registry = Registry("device augmentation")
Targets = dict[str, torch.Tensor]
_IDENTITY = D4()


@dataclass(frozen=True)
class Generators:
    """CPU generator for per-sample decisions, device generator for noise maps."""

    cpu: torch.Generator
    device: torch.Generator


def _applied(batch: int, p: float, rng: Generators) -> torch.Tensor:
    """B bool (CPU): which samples an op with probability p touches."""
    return torch.rand(batch, generator=rng.cpu) < p


def _uniform(batch: int, bounds: tuple[float, float], rng: Generators) -> torch.Tensor:
    """B float (CPU), uniform in [low, high]."""
    low, high = bounds
    return low + (high - low) * torch.rand(batch, generator=rng.cpu, dtype=torch.float64)


def _apply_d4(x: torch.Tensor, elements: Sequence[D4]) -> torch.Tensor:
    """Sample i of x (B×…×H×W) through elements[i]; one gather/scatter per distinct element."""
    rows: dict[D4, list[int]] = {}
    for index, element in enumerate(elements):
        if element != _IDENTITY:
            rows.setdefault(element, []).append(index)
    if not rows:
        return x
    out = x.clone()
    for element, index in rows.items():
        picked = torch.tensor(index, device=x.device)
        out[picked] = transform_image(x[picked], element)
    return out


@dataclass(frozen=True)
class GeometricOp:
    """Per sample, with probability p, one of `choices` (uniformly) on image and targets."""

    name: str
    choices: tuple[D4, ...]
    p: float

    @property
    def swaps_hw(self) -> bool:
        return any(element.swaps_hw for element in self.choices)

    def __call__(
        self, images: torch.Tensor, targets: Targets, rng: Generators
    ) -> tuple[torch.Tensor, Targets]:
        batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
        if self.swaps_hw and height != width:
            raise ValueError(
                f"augmentation.device: {self.name} turns H×W into W×H, so it needs square "
                f"training crops; this batch is {height}×{width}. Crop to a square in "
                "augmentation.train or use hflip/vflip only"
            )
        applied = _applied(batch, self.p, rng).tolist()
        picks = torch.randint(len(self.choices), (batch,), generator=rng.cpu).tolist()
        elements = [self.choices[k] if on else _IDENTITY for k, on in zip(picks, applied)]
        targets = {key: _apply_d4(value, elements) for key, value in targets.items()}
        return _apply_d4(images, elements), targets


def _as_float(images: torch.Tensor, copy: bool = False) -> torch.Tensor:
    """Pixel values as float 0..255 (uint8 converts; an earlier photometric op made float).

    copy: a tensor the caller may write into (never the input itself).
    """
    if images.is_floating_point():
        return images.clone() if copy else images
    return images.float()


@dataclass(frozen=True)
class BrightnessContrast:
    """x·α + β, α = 1 + U(contrast), β = U(brightness)·255 (or ·mean(x)), clamped to 0..255."""

    brightness: tuple[float, float]
    contrast: tuple[float, float]
    brightness_by_max: bool
    p: float

    def __call__(
        self, images: torch.Tensor, targets: Targets, rng: Generators
    ) -> tuple[torch.Tensor, Targets]:
        batch = images.shape[0]
        applied = _applied(batch, self.p, rng)
        alpha = 1.0 + _uniform(batch, self.contrast, rng)
        beta = _uniform(batch, self.brightness, rng)
        if not applied.any():
            return images, targets
        x = _as_float(images)
        shape = (batch,) + (1,) * (x.ndim - 1)
        # Untouched samples get α = 1, β = 0: exactly their own values, without a gather.
        alpha = torch.where(applied, alpha, 1.0).to(x.device, x.dtype).view(shape)
        beta = torch.where(applied, beta, 0.0).to(x.device, x.dtype).view(shape)
        if self.brightness_by_max:
            offset = beta * 255.0
        else:
            offset = beta * x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        return (x * alpha + offset).clamp_(0.0, 255.0), targets


@dataclass(frozen=True)
class GaussianNoise:
    """x + N(mean, σ) per pixel, σ = U(std_range)·255, mean = U(mean_range)·255, clamped."""

    std_range: tuple[float, float]
    mean_range: tuple[float, float]
    per_channel: bool
    p: float

    def __call__(
        self, images: torch.Tensor, targets: Targets, rng: Generators
    ) -> tuple[torch.Tensor, Targets]:
        batch = images.shape[0]
        applied = _applied(batch, self.p, rng)
        sigma = _uniform(batch, self.std_range, rng) * 255.0
        mean = _uniform(batch, self.mean_range, rng) * 255.0
        rows = applied.nonzero().flatten()
        if len(rows) == 0:
            return images, targets
        x = _as_float(images, copy=True)
        channels = x.shape[1] if self.per_channel else 1
        size = (len(rows), channels, *x.shape[2:])
        noise = torch.randn(size, generator=rng.device, device=x.device, dtype=x.dtype)
        shape = (len(rows),) + (1,) * (x.ndim - 1)
        sigma = sigma[rows].to(x.device, x.dtype).view(shape)
        mean = mean[rows].to(x.device, x.dtype).view(shape)
        picked = rows.to(x.device)
        x[picked] = (x[picked] + noise * sigma + mean).clamp_(0.0, 255.0)
        return x, targets


def _probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return float(p)


def _pair(value: Sequence[float], name: str) -> tuple[float, float]:
    """(low, high) as floats; two numbers, low first."""
    low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"{name} ({low}, {high}): low is above high")
    return low, high


def _limits(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """albumentations' convention: x means (-x, x); a pair is (low, high)."""
    return _pair((-value, value) if isinstance(value, (int, float)) else value, name)


@DEVICE_AUGMENTATIONS.register("hflip")
def hflip(p: float = 0.5) -> GeometricOp:
    """Mirror left-right (albumentations HorizontalFlip)."""
    return GeometricOp("hflip", (D4(0, True),), _probability(p))


@DEVICE_AUGMENTATIONS.register("vflip")
def vflip(p: float = 0.5) -> GeometricOp:
    """Mirror top-bottom (VerticalFlip)."""
    return GeometricOp("vflip", (D4(2, True),), _probability(p))


@DEVICE_AUGMENTATIONS.register("rot90")
def rot90(p: float = 1.0) -> GeometricOp:
    """0, 90, 180 or 270 degrees, uniformly (RandomRotate90); square crops only."""
    return GeometricOp("rot90", tuple(D4(k) for k in range(4)), _probability(p))


@DEVICE_AUGMENTATIONS.register("transpose")
def transpose(p: float = 0.5) -> GeometricOp:
    """Swap rows and columns (Transpose); square crops only."""
    return GeometricOp("transpose", (D4(1, True),), _probability(p))


@DEVICE_AUGMENTATIONS.register("d4")
def d4(p: float = 1.0) -> GeometricOp:
    """One of the 8 flips/rotations of the square, uniformly (D4); square crops only."""
    elements = tuple(D4(k, flip) for flip in (False, True) for k in range(4))
    return GeometricOp("d4", elements, _probability(p))


@DEVICE_AUGMENTATIONS.register("brightness_contrast")
def brightness_contrast(
    brightness_limit: float | Sequence[float] = 0.2,
    contrast_limit: float | Sequence[float] = 0.2,
    brightness_by_max: bool = True,
    p: float = 0.5,
) -> BrightnessContrast:
    """Image only (RandomBrightnessContrast): x·(1 + c) + b·255, c and b drawn per sample."""
    return BrightnessContrast(
        _limits(brightness_limit, "brightness_limit"),
        _limits(contrast_limit, "contrast_limit"),
        bool(brightness_by_max),
        _probability(p),
    )


@DEVICE_AUGMENTATIONS.register("gaussian_noise")
def gaussian_noise(
    std_range: Sequence[float] = (0.2, 0.44),
    mean_range: Sequence[float] = (0.0, 0.0),
    per_channel: bool = True,
    p: float = 0.5,
) -> GaussianNoise:
    """Image only (GaussNoise): per-pixel noise, σ = U(std_range)·255 drawn per sample."""
    std = _pair(std_range, "std_range")
    if std[0] < 0:
        raise ValueError(f"std_range {std} must not be negative")
    return GaussianNoise(std, _pair(mean_range, "mean_range"), bool(per_channel), _probability(p))


def build_device_ops(specs: Sequence[tuple[str, dict[str, Any]]]) -> list:
    """(name, kwargs) pairs → ops; errors name the entry, the op and what is accepted."""
    ops = []
    for index, (name, kwargs) in enumerate(specs):
        try:
            check_kwargs_fit(DEVICE_AUGMENTATIONS, name, kwargs, skip_first=False)
            ops.append(DEVICE_AUGMENTATIONS.get(name)(**kwargs))
        except (TypeError, ValueError) as error:
            raise ValueError(f"entry {index} ({name!r}): {error}") from None
    return ops


def check_square_crops(ops: Sequence, crops: set[tuple[int, int]]) -> None:
    """Refuse H×W-swapping ops when the train pipeline may crop to a non-square (H, W).

    crops: the sizes augmentation.train may end at (sizes left to the input are checked on
    every batch instead).
    """
    swapping = [op.name for op in ops if getattr(op, "swaps_hw", False)]
    oblong = sorted((h, w) for h, w in crops if h != w)
    if swapping and oblong:
        shown = ", ".join(f"{h}×{w}" for h, w in oblong)
        raise ValueError(
            f"augmentation.device: {', '.join(swapping)} can turn H×W into W×H, so the "
            f"training crops must be square, but augmentation.train may crop to "
            f"{shown}; crop to a square or use hflip/vflip only"
        )


class DeviceAugment:
    """The `augmentation.device` ops, run in order on one training batch on its device."""

    def __init__(self, ops: Sequence, seed: int) -> None:
        self.ops = list(ops)
        self.seed = seed
        self._device_generators: dict[torch.device, torch.Generator] = {}

    def generators(self, device: torch.device, step: Sequence[int]) -> Generators:
        """Fresh streams for this step: seeded from (seed, *step), nothing to checkpoint."""
        entropy = [self.seed % 2**63, *(int(s) for s in step)]
        cpu_seed, device_seed = np.random.SeedSequence(entropy).generate_state(2)
        if device not in self._device_generators:
            self._device_generators[device] = torch.Generator(device=device)
        on_device = self._device_generators[device]
        on_device.manual_seed(int(device_seed))
        return Generators(torch.Generator().manual_seed(int(cpu_seed)), on_device)

    def __call__(
        self, images: torch.Tensor, targets: Targets, step: Sequence[int]
    ) -> tuple[torch.Tensor, Targets]:
        """images: B×C×H×W uint8 (float 0..255 after a photometric op); targets: B×…×H×W."""
        rng = self.generators(images.device, step)
        for op in self.ops:
            images, targets = op(images, targets, rng)
        return images, targets
