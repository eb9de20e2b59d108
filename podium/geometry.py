"""The dihedral group D4 on image tensors: the flips and quarter turns shared by training-time
augmentation on the device and test-time augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["D4", "inverse_image", "transform_image"]

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
