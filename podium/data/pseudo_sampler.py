"""Pseudo-labelling: a batch sampler mixing a fixed share of pseudo-labelled items, and the rule
that turns an ensemble's probabilities into a pseudo mask (or drops the image).

The sampler follows the Severstal seed (khornlund's fixed-proportion BatchSampler): each batch
holds the same number of pseudo-labelled items (12 % of the batch there), and per epoch only a
random share of the pseudo pool (~60 %) is eligible, so pseudo labels regularise without
swamping the real ones. Use it over KeyedConcatDataset([labeled, pseudo]): indices >= n_labeled
are pseudo items.

    sampler = PseudoLabelBatchSampler(len(labeled), len(pseudo), batch_size=24)
    loader = DataLoader(KeyedConcatDataset([labeled, pseudo]), batch_sampler=sampler, ...)

Batches hold (index, seed) keys (podium.data.sample_keys), which torch's plain ConcatDataset
cannot take; KeyedConcatDataset passes (local index, seed) on to the part.

Under DDP pass num_replicas / rank and turn Lightning's sampler injection off
(Trainer(use_distributed_sampler=False)): this sampler already gives each rank its own batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from podium.data.sample_keys import KeyedConcatDataset, keyed

__all__ = ["PseudoLabelBatchSampler", "PseudoMix", "pseudo_label_masks"]


class _EpochHook:
    """Lightning calls `batch_sampler.sampler.set_epoch(epoch)` each epoch; forward it."""

    def __init__(self, owner: PseudoLabelBatchSampler) -> None:
        self._owner = owner

    def set_epoch(self, epoch: int) -> None:
        self._owner.set_epoch(epoch)


def _pseudo_per_batch(batch_size: int, fraction: float) -> int:
    """round(batch_size * fraction), at least 1 when fraction > 0, at most batch_size - 1."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"pseudo_fraction must be in [0, 1), got {fraction}")
    k = int(round(batch_size * fraction))
    k = max(k, 1) if fraction > 0 else 0
    if k >= batch_size:
        raise ValueError(
            f"batch_size {batch_size} with pseudo_fraction {fraction} leaves no labeled item"
        )
    return k


class PseudoLabelBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields key batches over KeyedConcatDataset([labeled, pseudo]) with a fixed pseudo count.

    Per epoch: labeled items are shuffled and each used once (batch_size - k per batch; the
    remainder is dropped with drop_last, else a smaller last batch); a random
    round(pseudo_sample_rate * n_pseudo) subset of the pseudo pool is drawn and cycled, k items
    per batch. Shuffles depend on (seed, epoch) only, so every rank builds the same global batch
    list and takes batches rank, rank + num_replicas, ...; all ranks get len(self) batches
    (drop_last drops the uneven tail, otherwise the first batches are repeated to pad).

    Each item is an (index, seed) key; the seeds too come from (seed, epoch), by position in
    that global (padded) list, so an item's augmentation depends on its place in the epoch
    only, not on the rank that takes it nor the worker that loads it.
    """

    seeded_keys = True

    def __init__(
        self,
        n_labeled: int,
        n_pseudo: int,
        batch_size: int,
        pseudo_fraction: float = 0.12,
        pseudo_sample_rate: float = 0.6,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = True,
    ) -> None:
        if n_labeled < 1 or n_pseudo < 0 or batch_size < 1:
            raise ValueError(
                f"need n_labeled >= 1, n_pseudo >= 0, batch_size >= 1; got {n_labeled}, "
                f"{n_pseudo}, {batch_size}"
            )
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        if not 0.0 < pseudo_sample_rate <= 1.0:
            raise ValueError(f"pseudo_sample_rate must be in (0, 1], got {pseudo_sample_rate}")
        self.pseudo_per_batch = _pseudo_per_batch(batch_size, pseudo_fraction)
        if self.pseudo_per_batch and n_pseudo == 0:
            raise ValueError("pseudo_fraction > 0 but the pseudo-labelled set is empty")
        self.n_labeled, self.n_pseudo, self.batch_size = n_labeled, n_pseudo, batch_size
        self.labeled_per_batch = batch_size - self.pseudo_per_batch
        self.pseudo_sample_rate = pseudo_sample_rate
        self.seed, self.epoch = seed, 0
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.sampler = _EpochHook(self)
        if len(self) == 0:
            raise ValueError(
                f"{n_labeled} labeled items make {self.global_batches} batches of "
                f"{self.labeled_per_batch} labeled items, fewer than {num_replicas} rank(s)"
            )

    @property
    def global_batches(self) -> int:
        """Batches per epoch over all ranks, before the per-rank split."""
        if self.drop_last:
            return self.n_labeled // self.labeled_per_batch
        return math.ceil(self.n_labeled / self.labeled_per_batch)

    @property
    def pseudo_pool_size(self) -> int:
        """Pseudo items eligible per epoch: round(rate * n_pseudo), at least 1 if any."""
        if self.n_pseudo == 0:
            return 0
        return max(1, int(round(self.pseudo_sample_rate * self.n_pseudo)))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration uses (seed + epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        total = self.global_batches
        if self.drop_last:
            return total // self.num_replicas
        return math.ceil(total / self.num_replicas)

    def _pseudo_stream(self, rng: np.random.Generator, needed: int) -> np.ndarray:
        """`needed` pseudo indices (offset by n_labeled) cycling this epoch's random subset."""
        if needed == 0:
            return np.zeros(0, dtype=np.int64)
        pool = rng.permutation(self.n_pseudo)[: self.pseudo_pool_size]
        # Each pass over the pool is freshly shuffled, so repeats land in different batches.
        passes = [rng.permutation(pool) for _ in range(math.ceil(needed / len(pool)))]
        return np.concatenate(passes)[:needed] + self.n_labeled

    def epoch_batches(self) -> list[list[int]]:
        """Every rank's batches for the current epoch, in global order (before the split)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        labeled = rng.permutation(self.n_labeled)
        total, per, k = self.global_batches, self.labeled_per_batch, self.pseudo_per_batch
        pseudo = self._pseudo_stream(rng, total * k)
        # Order within a batch does not change the gradient, so pseudo items simply go last.
        return [
            labeled[b * per : (b + 1) * per].tolist() + pseudo[b * k : (b + 1) * k].tolist()
            for b in range(total)
        ]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = self.epoch_batches()
        count = len(self)
        if count * self.num_replicas > len(batches):  # not drop_last: pad from the start
            batches = (batches * self.num_replicas)[: count * self.num_replicas]
        keys = iter(keyed([i for batch in batches for i in batch], self.seed, self.epoch))
        keyed_batches = [[next(keys) for _ in batch] for batch in batches]
        yield from keyed_batches[self.rank : count * self.num_replicas : self.num_replicas]


def _as_numpy(probs: torch.Tensor | np.ndarray) -> np.ndarray:
    """C×H×W probabilities as float32 numpy; raises on another shape or values outside [0, 1]."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3:
        raise ValueError(f"expected C×H×W probabilities, got shape {probs.shape}")
    if probs.size and (probs.min() < 0 or probs.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]; apply the sigmoid first")
    return probs


def pseudo_label_masks(
    probs: torch.Tensor | np.ndarray,
    threshold: float = 0.5,
    confidence: float = 0.8,
    min_confident_share: float = 0.99,
) -> tuple[np.ndarray, bool]:
    """C×H×W sigmoid probabilities → (C×H×W uint8 mask, keep).

    mask = probs >= threshold (as post-processing binarizes). Rule: a pixel of class c is
    confident when max(p, 1 - p) >= confidence; the image is kept only if, in every class,
    at least min_confident_share of the pixels are confident. One murky class drops the whole
    image: its pseudo mask for that class would be noise, and multi-label losses have no
    per-pixel ignore. Empty probability maps (no pixels) are dropped.
    """
    if not 0.5 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0.5, 1], got {confidence}")
    if not 0.0 <= min_confident_share <= 1.0:
        raise ValueError(f"min_confident_share must be in [0, 1], got {min_confident_share}")
    probs = _as_numpy(probs)
    mask = (probs >= np.float32(threshold)).astype(np.uint8)
    if probs.size == 0:
        return mask, False
    sure = np.maximum(probs, 1.0 - probs) >= np.float32(confidence)
    share = sure.reshape(sure.shape[0], -1).mean(axis=1)  # per class
    return mask, bool((share >= min_confident_share).all())


class PseudoMix(KeyedConcatDataset):
    """Labelled then pseudo-labelled items; the batch sampler fixes their mix per batch.

    Its (index, seed) keys reach the part holding the item (podium.data.sample_keys).
    """

    def __init__(self, labelled, pseudo) -> None:
        super().__init__([labelled, pseudo])
        self.n_labelled, self.n_pseudo = len(labelled), len(pseudo)
        self.transform = labelled.transform
