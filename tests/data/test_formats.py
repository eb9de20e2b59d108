"""Folder and Aeroscapes layouts, masks by id or palette, and every bad case named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from podium.data.dataset import SegmentationDataset
from podium.data.errors import DataError
from podium.data.formats import aeroscapes_samples, folder_samples
from podium.data.images import read_image, read_mask
from podium.data.synthetic import make_aeroscapes_dataset, make_folder_dataset

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]


def _read_ids(path: Path, **kw) -> np.ndarray:
    return read_mask(path, num_classes=3, ignore_index=kw.pop("ignore_index", 255), **kw)


def test_folder_pairs_by_stem(tmp_path):
    make_folder_dataset(tmp_path, n=5)
    samples = folder_samples(tmp_path / "images", tmp_path / "masks")
    assert len(samples) == 5
    assert all(s.image.stem == s.mask.stem == s.name for s in samples)


def test_missing_mask_and_orphan_mask_are_named(tmp_path):
    make_folder_dataset(tmp_path, n=4)
    masks = sorted((tmp_path / "masks").iterdir())
    masks[0].rename(tmp_path / "masks" / "orphan.png")
    with pytest.raises(DataError) as info:
        folder_samples(tmp_path / "images", tmp_path / "masks")
    assert masks[0].stem in str(info.value) and "orphan" in str(info.value)


def test_duplicate_stems_are_an_error(tmp_path):
    make_folder_dataset(tmp_path, n=2)
    first = sorted((tmp_path / "images").iterdir())[0]
    Image.open(first).save(first.with_suffix(".jpg"))
    with pytest.raises(DataError, match="share the stem"):
        folder_samples(tmp_path / "images", tmp_path / "masks")


def test_index_and_palette_masks_decode_to_the_same_ids(tmp_path):
    make_folder_dataset(tmp_path / "ids", n=3, seed=5)
    make_folder_dataset(tmp_path / "rgb", n=3, seed=5, palette=PALETTE)
    for a, b in zip(
        sorted((tmp_path / "ids/masks").iterdir()), sorted((tmp_path / "rgb/masks").iterdir())
    ):
        ids = _read_ids(a)
        from_rgb = _read_ids(b, palette=PALETTE)
        np.testing.assert_array_equal(ids, from_rgb)


def test_pil_palette_png_holds_class_ids(tmp_path):
    ids = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.fromarray(ids, mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(_read_ids(tmp_path / "p.png"), ids)


def test_class_id_out_of_range_names_file_and_values(tmp_path):
    Image.fromarray(np.array([[0, 7], [1, 255]], dtype=np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(DataError) as info:
        _read_ids(tmp_path / "m.png")
    assert "m.png" in str(info.value) and "[7]" in str(info.value)
    # 255 is the ignore index and therefore fine; without an ignore index it is not.
    with pytest.raises(DataError, match="255"):
        _read_ids(tmp_path / "m.png", ignore_index=None)


def test_palette_colour_not_in_palette_is_named(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[1, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(DataError) as info:
        _read_ids(tmp_path / "c.png", palette=PALETTE)
    assert "(1, 2, 3)" in str(info.value) and "c.png" in str(info.value)


def test_ignore_colour_maps_to_ignore_index(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 1] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "i.png")
    ids = _read_ids(tmp_path / "i.png", palette=PALETTE, ignore_color=(255, 255, 255))
    assert ids[0, 1] == 255 and ids[0, 0] == 0


def test_rgb_mask_without_palette_asks_for_one(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="mask_encoding"):
        _read_ids(tmp_path / "rgb.png")


def test_unreadable_image_and_mask_are_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(DataError, match="bad.png"):
        _read_ids(tmp_path / "bad.png")


def test_mask_size_mismatch_is_named(tmp_path):
    make_folder_dataset(tmp_path, n=1)
    mask_path = next((tmp_path / "masks").iterdir())
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(mask_path)
    samples = folder_samples(tmp_path / "images", tmp_path / "masks")
    dataset = SegmentationDataset(samples, read_mask=lambda p: _read_ids(p))
    with pytest.raises(DataError, match=mask_path.name):
        dataset[0]


def test_dataset_ships_uint8_image_and_mask(tmp_path):
    make_folder_dataset(tmp_path, n=2, size=(32, 48))
    samples = folder_samples(tmp_path / "images", tmp_path / "masks")
    item = SegmentationDataset(samples, read_mask=lambda p: _read_ids(p))[0]
    assert item["image"].dtype.is_floating_point is False and item["image"].shape == (3, 32, 48)
    assert str(item["image"].dtype) == "torch.uint8"
    # uint8 masks cross the worker boundary; the module casts to int64 on the device.
    assert str(item["mask"].dtype) == "torch.uint8" and item["mask"].shape == (32, 48)


def test_aeroscapes_layout(tmp_path):
    make_aeroscapes_dataset(tmp_path, n_train=4, n_val=2)
    train = aeroscapes_samples(tmp_path, "trn.txt")
    val = aeroscapes_samples(tmp_path, "val.txt")
    assert len(train) == 4 and len(val) == 2
    assert not {s.name for s in train} & {s.name for s in val}
    (tmp_path / "ImageSets/val.txt").write_text("does_not_exist\n")
    with pytest.raises(DataError, match="does_not_exist"):
        aeroscapes_samples(tmp_path, "val.txt")
