"""Class-balanced image sampling: images holding rare classes are drawn more often."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from podium.data.sample_keys import keyed

__all__ = ["ClassBalancedSampler", "class_balanced_sampler", "class_balanced_weights"]


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


class ClassBalancedSampler(WeightedRandomSampler):
    """With-replacement draws by weight, as (index, seed) keys; a function of (seed, epoch).

    The draws come from a generator seeded by (seed, epoch) at the start of each iteration, so
    an epoch's draws are the same after a resume and differ from epoch to epoch (Lightning
    calls `set_epoch`). See podium.data.sample_keys for the seeds.
    """

    seeded_keys = True

    def __init__(self, weights: np.ndarray, num_samples: int, seed: int = 0) -> None:
        super().__init__(torch.as_tensor(weights, dtype=torch.double), num_samples, True)
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        weights = self.weights.numpy()
        rng = np.random.default_rng([self.seed, self.epoch])
        draws = rng.choice(len(weights), size=self.num_samples, p=weights / weights.sum())
        yield from keyed(draws, self.seed, self.epoch)


def class_balanced_sampler(
    presence: np.ndarray, power: float = 1.0, seed: int = 0, num_samples: int | None = None
) -> ClassBalancedSampler:
    """A with-replacement sampler over the N images (num_samples defaults to N), seeded."""
    weights = class_balanced_weights(presence, power)
    return ClassBalancedSampler(weights, len(weights) if num_samples is None else num_samples, seed)
