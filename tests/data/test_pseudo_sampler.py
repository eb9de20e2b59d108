"""Tests for podium.data.pseudo_sampler: fixed-share pseudo batches and the pseudo-label rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader, Dataset

from podium.data.pseudo_sampler import PseudoLabelBatchSampler, pseudo_label_masks
from podium.data.sample_keys import KeyedConcatDataset, split_key

N_LAB, N_PSEUDO, BATCH = 880, 100, 25  # 25 * 0.12 = 3 pseudo + 22 labeled → 40 batches


def _sampler(**kw) -> PseudoLabelBatchSampler:
    return PseudoLabelBatchSampler(
        **{"n_labeled": N_LAB, "n_pseudo": N_PSEUDO, "batch_size": BATCH, **kw}
    )


def _split(batch: list[tuple[int, int]], n_labeled: int = N_LAB) -> tuple[list[int], list[int]]:
    """The batch's (labeled, pseudo) indices, its keys' seeds left out."""
    indices = [i for i, _ in batch]
    return [i for i in indices if i < n_labeled], [i for i in indices if i >= n_labeled]


class _Keys(Dataset):
    """Item = (first + index, seed) for an (index, seed) key: what reached the part."""

    def __init__(self, first: int, length: int) -> None:
        self.first, self.length = first, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, seed = split_key(key)
        return torch.tensor([self.first + index, seed])


# --- batch composition -------------------------------------------------------------------------


def test_every_batch_holds_the_exact_pseudo_count() -> None:
    sampler = _sampler()
    batches = list(sampler)
    assert sampler.pseudo_per_batch == 3 and len(batches) == len(sampler) == 40
    for batch in batches:
        labeled, pseudo = _split(batch)
        assert len(batch) == BATCH and len(pseudo) == 3 and len(labeled) == 22
        assert all(N_LAB <= i < N_LAB + N_PSEUDO for i in pseudo)


@pytest.mark.parametrize(("batch_size", "fraction", "expected"), [(4, 0.12, 1), (16, 0.12, 2)])
def test_pseudo_count_rounds_but_is_at_least_one(batch_size, fraction, expected) -> None:
    sampler = _sampler(batch_size=batch_size, pseudo_fraction=fraction)
    assert sampler.pseudo_per_batch == expected
    assert all(len(_split(b)[1]) == expected for b in sampler)


def test_zero_fraction_means_no_pseudo_items() -> None:
    sampler = PseudoLabelBatchSampler(50, 0, 10, pseudo_fraction=0.0)
    assert [len(_split(b, 50)[1]) for b in sampler] == [0] * 5


def test_labeled_items_are_each_used_once_per_epoch() -> None:
    for epoch in (0, 1):
        sampler = _sampler()
        sampler.set_epoch(epoch)
        labeled = [i for b in sampler for i in _split(b)[0]]
        assert sorted(labeled) == list(range(N_LAB))


def test_drop_last_false_keeps_a_short_last_batch() -> None:
    sampler = PseudoLabelBatchSampler(50, 20, 10, pseudo_fraction=0.2, drop_last=False)
    batches = list(sampler)  # 8 labeled per batch → 6 full batches and one with 2
    assert len(batches) == len(sampler) == 7
    assert sorted(i for b in batches for i in _split(b, 50)[0]) == list(range(50))
    assert [len(_split(b, 50)[1]) for b in batches] == [2] * 7


def test_only_a_sample_rate_share_of_the_pool_is_used_per_epoch() -> None:
    sampler = _sampler(pseudo_sample_rate=0.6)
    shares = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        used = {i for b in sampler for i in _split(b)[1]}
        shares.append(len(used) / N_PSEUDO)
    # 120 draws per epoch cycle through a 60-item pool: exactly the rate, a new pool each epoch.
    assert sampler.pseudo_pool_size == 60 and shares == [0.6] * 4
    counts = np.bincount([i - N_LAB for b in sampler for i in _split(b)[1]], minlength=N_PSEUDO)
    assert set(np.unique(counts)) <= {0, 2}  # the pool is cycled evenly


# --- epochs and DDP ----------------------------------------------------------------------------


def test_shuffle_is_deterministic_per_epoch() -> None:
    a, b = _sampler(seed=3), _sampler(seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(_sampler(seed=4)) != first


def test_lightning_reaches_set_epoch_through_the_dataloader() -> None:
    sampler = _sampler()
    dataset = KeyedConcatDataset([_Keys(0, N_LAB), _Keys(N_LAB, N_PSEUDO)])
    loader = DataLoader(dataset, batch_sampler=sampler)
    _set_sampler_epoch(loader, 7)  # what Lightning's fit loop calls at each epoch start
    assert sampler.epoch == 7
    batches = list(loader)
    assert len(batches) == len(loader) == 40
    assert all(int((b[:, 0] >= N_LAB).sum()) == 3 for b in batches)
    # Each part received its own item under the sampler's seed.
    assert [b.tolist() for b in batches] == [[list(k) for k in keys] for keys in sampler]


@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_get_disjoint_batches_of_equal_count(drop_last: bool) -> None:
    # 11 global batches of 9 labeled items + 1 pseudo (99 labeled); odd, so ranks need care.
    kw = dict(n_labeled=99, n_pseudo=40, batch_size=10, pseudo_fraction=0.1, drop_last=drop_last)
    ranks = [PseudoLabelBatchSampler(**kw, num_replicas=2, rank=r) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    out = [list(s) for s in ranks]
    assert len(out[0]) == len(out[1]) == len(ranks[0]) == (5 if drop_last else 6)
    labeled = [{i for b in batches for i in _split(b, 99)[0]} for batches in out]
    if drop_last:
        assert not labeled[0] & labeled[1]
        assert len(labeled[0] | labeled[1]) == 10 * 9  # 10 of the 11 global batches
    else:
        assert labeled[0] | labeled[1] == set(range(99))  # padding repeats, nothing is lost
    single = PseudoLabelBatchSampler(**kw)
    single.set_epoch(2)
    assert out[0][:5] == list(single)[0:10:2]  # rank r takes global batches r, r + 2, ...


def test_invalid_settings_raise() -> None:
    with pytest.raises(ValueError, match="no labeled item"):
        PseudoLabelBatchSampler(10, 10, 1, pseudo_fraction=0.5)
    with pytest.raises(ValueError, match="empty"):
        PseudoLabelBatchSampler(10, 0, 5)
    with pytest.raises(ValueError, match="fewer than"):
        PseudoLabelBatchSampler(3, 10, 8)
    with pytest.raises(ValueError, match="rank"):
        PseudoLabelBatchSampler(100, 10, 8, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="pseudo_sample_rate"):
        PseudoLabelBatchSampler(100, 10, 8, pseudo_sample_rate=0)


# --- pseudo-label rule -------------------------------------------------------------------------


def test_confident_image_is_kept_with_thresholded_mask() -> None:
    probs = np.full((4, 20, 30), 0.02, dtype=np.float32)
    probs[2, 5:10, 5:15] = 0.97
    probs[2, 5, 5] = 0.5  # a single unsure pixel is well inside the tolerance
    mask, keep = pseudo_label_masks(probs)
    assert keep
    assert mask.dtype == np.uint8 and mask.shape == probs.shape
    assert np.array_equal(mask, (probs >= 0.5).astype(np.uint8))


def test_one_murky_class_drops_the_image() -> None:
    probs = np.full((4, 20, 30), 0.02, dtype=np.float32)
    probs[1, :, :10] = 0.6  # a third of class 2 is unsure (0.2 < p < 0.8)
    mask, keep = pseudo_label_masks(torch.from_numpy(probs))
    assert not keep and mask[1].sum() == 200
    _, keep_loose = pseudo_label_masks(probs, min_confident_share=0.6)
    assert keep_loose
    _, keep_low_bar = pseudo_label_masks(probs, confidence=0.6)
    assert keep_low_bar  # max(0.6, 0.4) = 0.6 counts as confident at that bar


def test_pseudo_label_rule_checks_inputs() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        pseudo_label_masks(np.full((1, 2, 2), 3.0))
    with pytest.raises(ValueError, match="C×H×W"):
        pseudo_label_masks(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="confidence"):
        pseudo_label_masks(np.zeros((1, 2, 2)), confidence=0.3)


def test_keys_carry_per_position_seeds_fixed_by_seed_and_epoch() -> None:
    from podium.data.sample_keys import sample_seeds

    a, b = _sampler(seed=3), _sampler(seed=3)
    for _ in a:  # an earlier pass changes nothing
        pass
    first = [k for batch in a for k in batch]
    assert first == [k for batch in b for k in batch]
    assert [s for _, s in first] == sample_seeds(3, 0, len(first))
    a.set_epoch(1)
    second = [k for batch in a for k in batch]
    assert {s for _, s in second}.isdisjoint(s for _, s in first)
