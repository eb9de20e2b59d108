"""data.cache: ram — cached items equal uncached ones, the cache never changes, size limit."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch

import podium.data.dataset as dataset_module
import podium.data.rle_dataset as rle_module
import podium.data.tiling as tiling_module
from podium.build import build_datamodule
from podium.config import load_config
from podium.data.cache import CacheTooLargeError, fill_ram_caches
from podium.data.dataset import SegmentationDataset
from podium.data.formats import folder_samples
from podium.data.images import read_mask
from podium.data.rle_dataset import RleCsvDataset
from podium.data.severstal import make_severstal_dataset
from podium.data.tiling import TiledDataset


def _reader(path: Path) -> np.ndarray:
    return read_mask(path, num_classes=3, ignore_index=255)


def _folder_dataset(tiny_data: Path, split: str = "train", transform=None) -> SegmentationDataset:
    samples = folder_samples(tiny_data / split / "images", tiny_data / split / "masks")
    return SegmentationDataset(samples, _reader, transform=transform)


def _no_file_reads(monkeypatch) -> None:
    """Any decode from disk fails: items must come from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("read from disk although the cache is filled")

    for module in (dataset_module, rle_module, tiling_module):
        monkeypatch.setattr(module, "read_image", refuse)


def _assert_same_items(plain, cached) -> None:
    assert len(plain) == len(cached)
    for index in range(len(plain)):
        a, b = plain[index], cached[index]
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == b[key].dtype and torch.equal(value, b[key]), (index, key)
            else:
                assert value == b[key]


def test_cached_folder_items_equal_uncached_and_no_file_is_read(tiny_data, monkeypatch):
    plain, cached = _folder_dataset(tiny_data), _folder_dataset(tiny_data)
    expected = [plain[i] for i in range(len(plain))]
    used = fill_ram_caches([cached], max_gb=1.0)
    # 12 RGB images and masks of 64×64.
    assert used == pytest.approx(12 * 64 * 64 * 4 / 1e9)
    _no_file_reads(monkeypatch)
    _assert_same_items(expected, cached)


def test_cached_tiles_equal_uncached(tiny_data, monkeypatch):
    samples = folder_samples(tiny_data / "train/images", tiny_data / "train/masks")
    make = lambda: TiledDataset(samples, _reader, (1.0, 0.5), 32, 0.5, ignore_index=255)  # noqa: E731
    plain, cached = make(), make()
    expected = [plain[i] for i in range(len(plain))]
    fill_ram_caches([cached], max_gb=1.0)
    _no_file_reads(monkeypatch)
    _assert_same_items(expected, cached)


def test_cached_rle_images_equal_uncached(tmp_path, monkeypatch):
    root = make_severstal_dataset(tmp_path, n_train=6, n_test=1, height=32, width=64)
    make = lambda: RleCsvDataset(root / "train_images", root / "train.csv")  # noqa: E731
    plain, cached = make(), make()
    expected = [plain[i] for i in range(len(plain))]
    assert fill_ram_caches([cached], max_gb=1.0) == pytest.approx(6 * 32 * 64 / 1e9)
    _no_file_reads(monkeypatch)
    _assert_same_items(expected, cached)


class _WritesInPlace(A.DualTransform):
    """An augmentation that writes into the arrays it is given (as some cv2-based ones can)."""

    def apply(self, img, **params):
        img[:8] = 0
        return img

    def apply_to_mask(self, mask, **params):
        mask[:8] = 1
        return mask


def test_augmentation_never_changes_the_cached_arrays(tiny_data):
    transform = A.Compose([_WritesInPlace(p=1.0), A.CoarseDropout(fill=0, p=1.0)])
    dataset = _folder_dataset(tiny_data, transform=transform)
    fill_ram_caches([dataset], max_gb=1.0)
    store = dataset.cache.store
    before = store.images.buffer.copy(), store.masks.buffer.copy()
    for _ in range(2):  # two epochs
        items = [dataset[i] for i in range(len(dataset))]
    assert np.array_equal(store.images.buffer, before[0])
    assert np.array_equal(store.masks.buffer, before[1])
    assert (items[0]["image"][:, :8] == 0).all() and (items[0]["mask"][:8] == 1).all()


def test_items_do_not_share_memory_with_the_cache(tiny_data):
    dataset = _folder_dataset(tiny_data)  # no transform: the mask goes out as it was read
    fill_ram_caches([dataset], max_gb=1.0)
    store = dataset.cache.store
    before = store.images.buffer.copy(), store.masks.buffer.copy()
    item = dataset[0]
    item["image"].fill_(7)
    item["mask"].fill_(7)
    assert np.array_equal(store.images.buffer, before[0])
    assert np.array_equal(store.masks.buffer, before[1])


def test_too_large_cache_is_refused_naming_the_key_and_size(tiny_data):
    dataset = _folder_dataset(tiny_data)
    # 12 RGB images and masks of 64×64: 196,608 bytes.
    with pytest.raises(
        CacheTooLargeError, match=r"needs 0\.000197 GB .*data\.cache_max_gb = 1e-05"
    ):
        fill_ram_caches([dataset], max_gb=1e-5)
    assert dataset.cache is None  # refused before anything was decoded or attached


def test_a_folder_shared_by_two_datasets_is_decoded_once(tiny_data):
    first, second = _folder_dataset(tiny_data), _folder_dataset(tiny_data)
    used = fill_ram_caches([first, second], max_gb=1.0)
    assert used == pytest.approx(12 * 64 * 64 * 4 / 1e9)
    assert first.cache.store is second.cache.store


def test_parts_of_a_concat_dataset_each_get_their_rows(tiny_data, monkeypatch):
    train, val = _folder_dataset(tiny_data, "train"), _folder_dataset(tiny_data, "val")
    expected = [train[0]["image"], val[5]["image"]]
    mixed = torch.utils.data.ConcatDataset([train, val])  # like labelled + pseudo-labelled
    fill_ram_caches([mixed], max_gb=1.0)
    _no_file_reads(monkeypatch)
    assert torch.equal(mixed[0]["image"], expected[0])
    assert torch.equal(mixed[12 + 5]["image"], expected[1])


def test_datamodule_fills_the_cache_only_when_asked(tiny_config, monkeypatch):
    plain = build_datamodule(load_config(raw=tiny_config))
    assert plain.train_set.cache is None and plain.val_set.cache is None
    config = load_config(raw=tiny_config, overrides=["data.cache=ram"])
    datamodule = build_datamodule(config)
    assert datamodule.train_set.cache is not None and datamodule.val_set.cache is not None
    _no_file_reads(monkeypatch)
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["mask"].shape == (4, 64, 64)


def test_datamodule_refuses_a_cache_past_the_configured_limit(tiny_config):
    config = load_config(raw=tiny_config, overrides=["data.cache=ram", "data.cache_max_gb=1e-4"])
    with pytest.raises(
        CacheTooLargeError, match=r"needs 0\.000295 GB .*data\.cache_max_gb = 0\.0001"
    ):
        build_datamodule(config)


def test_forked_workers_read_the_cache(tiny_data, monkeypatch):
    dataset = _folder_dataset(tiny_data)
    expected = [dataset[i]["image"] for i in range(len(dataset))]
    fill_ram_caches([dataset], max_gb=1.0)
    _no_file_reads(monkeypatch)  # inherited by the forked worker
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=6, num_workers=1, multiprocessing_context="fork"
    )
    images = torch.cat([batch["image"] for batch in loader])
    assert torch.equal(images, torch.stack(expected))
