"""The dihedral group D4 on image tensors, on (x, y) vectors and on boxes: the flips and
quarter turns shared by training-time augmentation on the device and test-time augmentation.

Coordinates: x runs along W (to the right), y along H (downwards). Vectors hold (x, y) pairs
on dim 1, e.g. (cos θ, sin θ): B×2, or B×2k×H×W fields; boxes hold normalized
(x1, y1, x2, y2) on the last dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "D4",
    "inverse_image",
    "normalize_vectors",
    "sort_boxes",
    "transform_boxes",
    "transform_image",
    "transform_vectors",
]

_EPS = 1e-7

_NAMES = {
    (0, False): "identity",
    (1, False): "rot90",
    (2, False): "rot180",
    (3, False): "rot270",
    (0, True): "hflip",
    (1, True): "transpose",
    (2, True): "vflip",
    (3, True): "antitranspose",
}


@dataclass(frozen=True)
class D4:
    """x ↦ rot90^rot(hflip^hflip(x)) on the last two dims (torch.rot90, dims=(-2, -1))."""

    rot: int = 0
    hflip: bool = False

    @property
    def name(self) -> str:
        return _NAMES[(self.rot % 4, self.hflip)]

    @property
    def swaps_hw(self) -> bool:
        return self.rot % 2 == 1


def transform_image(x: torch.Tensor, t: D4) -> torch.Tensor:
    """…×H×W → …×H×W (or …×W×H when t rotates by 90°): hflip first, then rotate."""
    if t.hflip:
        x = x.flip(-1)
    return torch.rot90(x, t.rot, dims=(-2, -1)) if t.rot % 4 else x


def inverse_image(x: torch.Tensor, t: D4) -> torch.Tensor:
    """Undo transform_image: rotate back, then hflip."""
    if t.rot % 4:
        x = torch.rot90(x, -t.rot, dims=(-2, -1))
    return x.flip(-1) if t.hflip else x


def _rotate_xy(
    x: torch.Tensor, y: torch.Tensor, k: int, offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """k quarter turns of torch.rot90: (x, y) ↦ (y, offset - x); offset 1 for points, 0 vectors."""
    for _ in range(k % 4):
        x, y = y, offset - x
    return x, y


def _map_xy(
    x: torch.Tensor, y: torch.Tensor, t: D4, offset: float, inverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply t (or its inverse) to coordinates; offset=1 for normalized points, 0 vectors."""
    if not inverse and t.hflip:
        x = offset - x
    x, y = _rotate_xy(x, y, -t.rot if inverse else t.rot, offset)
    if inverse and t.hflip:
        x = offset - x
    return x, y


def transform_vectors(v: torch.Tensor, t: D4, inverse: bool = False) -> torch.Tensor:
    """B×2k(×H×W) (x, y) pairs on dim 1 → the same pairs seen through t (or its inverse).

    Fields (4-D) are moved spatially too, so a field of t(image) is t applied to both.
    """
    if v.shape[1] % 2:
        raise ValueError(f"vectors need (x, y) pairs on dim 1, got shape {tuple(v.shape)}")
    if v.dim() == 4:
        v = inverse_image(v, t) if inverse else transform_image(v, t)
    pairs = v.unflatten(1, (-1, 2))
    x, y = _map_xy(pairs[:, :, 0], pairs[:, :, 1], t, 0.0, inverse)
    return torch.stack((x, y), dim=2).flatten(1, 2)


def normalize_vectors(v: torch.Tensor) -> torch.Tensor:
    """B×2k(×H×W) (x, y) pairs on dim 1 → unit length (zero vectors stay ~zero)."""
    pairs = v.unflatten(1, (-1, 2))
    pairs = pairs / pairs.norm(dim=2, keepdim=True).clamp_min(_EPS)
    return pairs.flatten(1, 2)


def transform_boxes(b: torch.Tensor, t: D4, inverse: bool = False) -> torch.Tensor:
    """…×4 normalized (x1, y1, x2, y2) → mapped corners, re-sorted so x1 ≤ x2, y1 ≤ y2."""
    if b.shape[-1] != 4:
        raise ValueError(f"boxes need (x1, y1, x2, y2) on the last dim, got {tuple(b.shape)}")
    x1, y1 = _map_xy(b[..., 0], b[..., 1], t, 1.0, inverse)
    x2, y2 = _map_xy(b[..., 2], b[..., 3], t, 1.0, inverse)
    return sort_boxes(torch.stack((x1, y1, x2, y2), dim=-1))


def sort_boxes(b: torch.Tensor) -> torch.Tensor:
    """…×4 boxes with x1 ≤ x2 and y1 ≤ y2 (corners swapped where needed)."""
    x1, x2 = torch.minimum(b[..., 0], b[..., 2]), torch.maximum(b[..., 0], b[..., 2])
    y1, y2 = torch.minimum(b[..., 1], b[..., 3]), torch.maximum(b[..., 1], b[..., 3])
    return torch.stack((x1, y1, x2, y2), dim=-1)
