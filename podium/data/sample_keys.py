"""Sample keys: training items indexed by (index, seed), so augmentation depends on nothing else.

albumentations 2.x keeps private generators in each pipeline. Seeded once per process they
drift with whatever that process happened to draw before: which worker got which items, and,
with persistent workers, everything earlier epochs drew there, where no checkpoint sees it.
So training samplers (`SeededShuffleSampler`, the class-balanced sampler, the pseudo-label
batch sampler) yield `(index, seed)` keys instead of plain indices: the seed of the item at
position k of an epoch's order is a function of (base seed, epoch, k) only, and the dataset
reseeds its transform from it just before applying it. The augmented item is then the same
with any num_workers, persistent or not, and after a kill and resume.

Datasets still take a plain int (validation, prediction, tests), which leaves the transform's
generators as they are.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Sampler

__all__ = [
    "KeyedConcatDataset",
    "SampleKey",
    "SeededShuffleSampler",
    "keyed",
    "sample_seeds",
    "seed_transform",
    "split_key",
]

SampleKey = int | tuple[int, int]

# Third word of the SeedSequence entropy: the per-sample seeds are a stream of their own, not
# the draws that shuffle the same (seed, epoch).
_SEED_STREAM = 0x5EED


def sample_seeds(seed: int, epoch: int, count: int) -> list[int]:
    """The augmentation seeds of positions 0..count-1 of epoch `epoch`'s order (Python ints)."""
    rng = np.random.default_rng([seed, epoch, _SEED_STREAM])
    return rng.integers(0, 2**63, size=count, dtype=np.int64).tolist()


def keyed(indices: Sequence[int] | np.ndarray, seed: int, epoch: int) -> list[tuple[int, int]]:
    """An epoch's order as (index, seed) keys: position k gets sample_seeds(...)[k]."""
    indices = np.asarray(indices, dtype=np.int64).tolist()
    return list(zip(indices, sample_seeds(seed, epoch, len(indices))))


def split_key(key: Any) -> tuple[Any, int | None]:
    """(index, seed) of a key; a plain index comes back unchanged with seed None."""
    if isinstance(key, tuple):
        index, seed = key
        return int(index), int(seed)
    return key, None


def seed_transform(transform: Any, key: Any) -> Any:
    """The index in `key`; an (index, seed) key first reseeds `transform` from that seed.

    Every transform of the pipeline (OneOf, Sequential and podium's CopyPaste included) then
    draws from one fresh generator pair, so the output depends on the image and the seed only.
    A plain index leaves the transform's generators as they are.
    """
    index, seed = split_key(key)
    reseed = getattr(transform, "set_random_state", None)
    if seed is not None and reseed is not None:
        reseed(np.random.default_rng(seed), random.Random(seed))
    return index


class KeyedConcatDataset(ConcatDataset):
    """torch's ConcatDataset that also takes (index, seed) keys: the part gets (local, seed)."""

    def __getitem__(self, key: Any) -> Any:
        index, seed = split_key(key)
        if seed is None:
            return super().__getitem__(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is outside a dataset of {len(self)} items")
        part = bisect.bisect_right(self.cumulative_sizes, index)
        local = index - (self.cumulative_sizes[part - 1] if part else 0)
        return self.datasets[part][(local, seed)]


class SeededShuffleSampler(Sampler[tuple[int, int]]):
    """Each index once per epoch in a (seed, epoch) order, keyed with per-position seeds.

    The default training sampler: unlike DataLoader(shuffle=True) its order does not come from
    the torch global RNG, so it is the same after a resume. Lightning calls `set_epoch` at the
    start of every epoch (and forwards it through its DDP DistributedSamplerWrapper, which
    shards the keys like any other sampler's output).
    """

    seeded_keys = True

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # A generator: the order is drawn at the first next(), with the epoch set by then.
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        yield from keyed(order, self.seed, self.epoch)
