"""(index, seed) keys: the augmentation of an item depends on its key, not on the process state."""

from __future__ import annotations

import functools
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from podium.data.copy_paste import CopyPaste, DonorPool
from podium.data.dataset import SegmentationDataset
from podium.data.formats import folder_samples
from podium.data.images import read_mask
from podium.data.rle_dataset import RleCsvDataset, severstal_crop_transform
from podium.data.sample_keys import (
    KeyedConcatDataset,
    SeededShuffleSampler,
    sample_seeds,
    seed_transform,
    split_key,
)
from podium.data.severstal import make_severstal_dataset
from podium.data.synthetic import make_folder_dataset
from podium.data.tiling import TiledDataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    make_folder_dataset(root, n=4, size=(64, 64), num_classes=3, seed=5)
    return root


@pytest.fixture(scope="module")
def severstal(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("keys_rle")
    return make_severstal_dataset(out, n_train=4, n_test=1, height=64, width=256)


def _random_pipeline(donors=None) -> A.Compose:
    """Flips in a OneOf, a crop, colour and (with donors) copy-paste: many random draws."""
    steps = [
        A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=0.8),
        A.RandomCrop(40, 40),
        A.ColorJitter(p=0.8),
    ]
    if donors is not None:
        steps.insert(0, CopyPaste([1, 2], donors=donors, p=0.9, scale_range=(0.5, 1.5)))
    pipeline = A.Compose(steps)
    pipeline.set_random_seed(0)
    return pipeline


def _folder_dataset(folder: Path, tiles: bool = False, copy_paste: bool = False):
    samples = folder_samples(folder / "images", folder / "masks")
    reader = functools.partial(read_mask, num_classes=3, ignore_index=None)
    transform = _random_pipeline(DonorPool(samples, reader) if copy_paste else None)
    if tiles:
        return TiledDataset(samples, reader, (1.0, 0.75), 48, 0.5, transform)
    return SegmentationDataset(samples, reader, transform)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def _check_keys_fix_the_augmentation(dataset) -> None:
    first = dataset[(1, 77)]
    for i in range(5):  # move the transform's own generators on
        dataset[i % len(dataset)]
    assert _same(dataset[(1, 77)], first)
    # Another seed, another augmentation (at least one of a few differs).
    assert any(not _same(dataset[(1, seed)], first) for seed in range(78, 84))
    # A plain int still works and gives an item of the same form.
    plain = dataset[1]
    assert plain.keys() == first.keys() and plain["name"] == first["name"]
    assert plain["image"].shape == first["image"].shape


def test_segmentation_dataset_key_fixes_augmentation(folder) -> None:
    _check_keys_fix_the_augmentation(_folder_dataset(folder))


def test_copy_paste_draws_from_the_reseeded_generator(folder) -> None:
    dataset = _folder_dataset(folder, copy_paste=True)
    _check_keys_fix_the_augmentation(dataset)
    seed_transform(dataset.transform, (0, 1))
    paste = dataset.transform.transforms[0]
    one_of = dataset.transform.transforms[1]
    assert paste.random_generator is dataset.transform.random_generator
    assert one_of.transforms[0].py_random is dataset.transform.py_random


def test_tiled_dataset_key_fixes_augmentation(folder) -> None:
    _check_keys_fix_the_augmentation(_folder_dataset(folder, tiles=True))


def test_rle_dataset_key_fixes_augmentation(severstal) -> None:
    transform = severstal_crop_transform(32, 64, flip="any")
    transform.set_random_seed(0)
    dataset = RleCsvDataset(severstal / "train_images", severstal / "train.csv", 4, 1, transform)
    _check_keys_fix_the_augmentation(dataset)


def test_keyed_concat_routes_keys_to_the_part_with_its_local_index(folder) -> None:
    a, b = _folder_dataset(folder), _folder_dataset(folder, tiles=True)
    both = KeyedConcatDataset([a, b])
    assert _same(both[(len(a) + 2, 9)], b[(2, 9)])
    assert _same(both[(1, 9)], a[(1, 9)])
    assert _same(both[(-1, 9)], b[(len(b) - 1, 9)])
    assert both[len(a)]["name"] == b[0]["name"]  # plain ints as in torch's ConcatDataset
    with pytest.raises(IndexError):
        both[(len(both), 9)]


def test_split_key_and_seeds() -> None:
    assert split_key(5) == (5, None)
    assert split_key((np.int64(5), np.int64(6))) == (5, 6)
    seeds = sample_seeds(3, 0, 100)
    assert seeds == sample_seeds(3, 0, 100) and len(set(seeds)) == 100
    assert seeds[:10] == sample_seeds(3, 0, 10)  # by position: a prefix does not change
    assert seeds != sample_seeds(3, 1, 100) and seeds != sample_seeds(4, 0, 100)
    assert all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)


def test_shuffle_sampler_is_a_function_of_seed_and_epoch() -> None:
    sampler = SeededShuffleSampler(50, seed=3)
    torch.manual_seed(0)
    first = list(sampler)
    torch.manual_seed(1)  # the global torch RNG plays no part
    assert list(sampler) == first
    assert sorted(i for i, _ in first) == list(range(50)) and len(sampler) == 50
    assert [s for _, s in first] == sample_seeds(3, 0, 50)
    sampler.set_epoch(1)
    second = list(sampler)
    assert [i for i, _ in second] != [i for i, _ in first]
    assert {s for _, s in second}.isdisjoint(s for _, s in first)
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert list(SeededShuffleSampler(50, seed=4)) != first


def test_lightning_ddp_wrapper_shards_keys_and_forwards_the_epoch() -> None:
    single = SeededShuffleSampler(10, seed=1)
    single.set_epoch(2)
    expected = list(single)
    ranks = [
        DistributedSamplerWrapper(
            SeededShuffleSampler(10, seed=1), num_replicas=2, rank=r, shuffle=False
        )
        for r in (0, 1)
    ]
    for wrapper in ranks:
        wrapper.set_epoch(2)  # Lightning's fit loop, each epoch
    out = [list(w) for w in ranks]
    assert all(isinstance(k, tuple) for keys in out for k in keys)
    assert out[0] == expected[0::2] and out[1] == expected[1::2]
