"""Class-balanced image sampling: images holding rare classes are drawn more often."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["class_balanced_sampler", "class_balanced_weights"]


def class_balanced_weights(presence: np.ndarray, power: float = 1.0) -> np.ndarray:
    """N×C bool presence → N float64 weights: max over the image's classes of (1/freq)^power.

    freq is the share of images holding the class; an image holding no class gets the
    smallest weight of the others (1 when no image holds any class). power 0 is uniform,
    0.5 a common softer setting.
    """
    presence = np.asarray(presence, dtype=bool)
    if presence.ndim != 2 or len(presence) == 0:
        raise ValueError(f"presence must be a non-empty N×C matrix, got shape {presence.shape}")
    freq = presence.mean(axis=0)
    inverse = np.divide(1.0, freq, out=np.zeros_like(freq), where=freq > 0) ** power
    weights = np.where(presence, inverse[None, :], 0.0).max(axis=1)
    has_class = presence.any(axis=1)
    floor = weights[has_class].min() if has_class.any() else 1.0
    return np.where(has_class, weights, floor)


def class_balanced_sampler(
    presence: np.ndarray, power: float = 1.0, seed: int = 0, num_samples: int | None = None
) -> WeightedRandomSampler:
    """A with-replacement sampler over the N images (num_samples defaults to N), seeded."""
    weights = class_balanced_weights(presence, power)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=len(weights) if num_samples is None else num_samples,
        replacement=True,
        generator=generator,
    )
