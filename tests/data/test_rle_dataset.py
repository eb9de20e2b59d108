"""Tests for podium.data.rle_dataset: images + Kaggle RLE CSV → multi-label mask items."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import yaml

from podium.data.errors import DataError
from podium.data.rle_csv import decode_image_masks, read_rle_csv
from podium.data.rle_dataset import (
    RleCsvDataset,
    severstal_crop_transform,
    severstal_crop_transform_dict,
)
from podium.data.severstal import make_severstal_dataset
from podium.data.transforms import build_transform

SHAPE = (64, 400)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("severstal_ds")
    return make_severstal_dataset(out, n_train=12, n_test=4, height=SHAPE[0], width=SHAPE[1])


def _dataset(root: Path, **kw) -> RleCsvDataset:
    return RleCsvDataset(root / "train_images", root / "train.csv", **kw)


# --- items ---------------------------------------------------------------------------------


def test_items_hold_grey_image_and_multilabel_mask(root: Path) -> None:
    ds = _dataset(root)
    labels = read_rle_csv(root / "train.csv", num_classes=4)
    assert len(ds) == 12
    seen_clean = seen_defect = False
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, *SHAPE) and str(item["image"].dtype) == "torch.uint8"
        assert item["mask"].shape == (4, *SHAPE) and str(item["mask"].dtype) == "torch.uint8"
        image_id = f"{item['name']}.jpg"
        expected = decode_image_masks(labels.get(image_id, {}), SHAPE, 4)
        assert np.array_equal(item["mask"].numpy(), expected)
        seen_clean |= image_id not in labels
        seen_defect |= image_id in labels
    assert seen_clean and seen_defect  # clean images (no CSV rows) get all-empty masks


def test_three_channels_target_key_and_presence(root: Path) -> None:
    ds = _dataset(root, channels=3, target_key="defects")
    item = ds[0]
    assert item["image"].shape == (3, *SHAPE) and "defects" in item and "mask" not in item
    labels = read_rle_csv(root / "train.csv", num_classes=4)
    expected = np.array([[c in labels.get(i, {}) for c in range(1, 5)] for i in ds.ids])
    assert np.array_equal(ds.presence(), expected)


def test_unlabelled_images_and_subsets(root: Path) -> None:
    test = RleCsvDataset(root / "test_images", None)
    assert len(test) == 4 and "mask" not in test[0]
    ids = _dataset(root).ids
    sub = _dataset(root, image_ids=ids[3:6])
    assert sub.ids == ids[3:6] and len(sub) == 3
    with pytest.raises(DataError, match="not in"):
        _dataset(root, image_ids=["nope.jpg"])


def test_preparsed_labels(root: Path) -> None:
    labels = read_rle_csv(root / "train.csv", num_classes=4)
    ds = RleCsvDataset(root / "train_images", labels)
    ref = _dataset(root)
    assert np.array_equal(ds[2]["mask"].numpy(), ref[2]["mask"].numpy())
    with pytest.raises(DataError, match="ghost.jpg"):
        RleCsvDataset(root / "train_images", {**labels, "ghost.jpg": {1: "1 3"}})


# --- strictness ------------------------------------------------------------------------------


def test_unknown_image_in_csv_names_the_row(root: Path, tmp_path: Path) -> None:
    lines = (root / "train.csv").read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1], "ghost.jpg,1,1 3", *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"row 3 .*unknown ImageId 'ghost.jpg'"):
        RleCsvDataset(root / "train_images", bad)


def test_rle_past_the_image_fails_naming_csv_and_image(root: Path, tmp_path: Path) -> None:
    image_id = _dataset(root).ids[0]
    bad = tmp_path / "long.csv"
    bad.write_text(f"ImageId,ClassId,EncodedPixels\n{image_id},2,1 999999\n")
    ds = RleCsvDataset(root / "train_images", bad, image_ids=[image_id])
    with pytest.raises(DataError, match=r"long\.csv.*ClassId=2.*past the last pixel"):
        ds[0]


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        RleCsvDataset(tmp_path / "nope", None)
    with pytest.raises(DataError, match="no images"):
        RleCsvDataset(tmp_path, None)


# --- augmentation ----------------------------------------------------------------------------


def test_transform_keeps_mask_aligned_as_channels(root: Path) -> None:
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    plain, flipped = _dataset(root), _dataset(root, transform=flip)
    index = next(i for i in range(len(plain)) if plain[i]["mask"].any())
    a, b = plain[index], flipped[index]
    assert np.array_equal(b["mask"].numpy(), a["mask"].numpy()[:, :, ::-1])
    assert np.array_equal(b["image"].numpy(), a["image"].numpy()[:, :, ::-1])


def test_seed_pipeline_crops_grey_images_and_masks(root: Path) -> None:
    ds = _dataset(root, transform=severstal_crop_transform(32, 64))
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, 32, 64) and item["mask"].shape == (4, 32, 64)


def test_clahe_works_on_one_channel() -> None:
    image = np.random.default_rng(0).integers(60, 120, size=(64, 96, 1), dtype=np.uint8)
    out = A.CLAHE(p=1.0)(image=image)["image"]
    assert out.shape == image.shape and out.dtype == np.uint8 and (out != image).any()


def _hit_rate(transform: A.BasicTransform, n: int = 60) -> float:
    """Share of crops holding defect pixels; the only defect sits in the top-left corner."""
    image = np.full((64, 400, 1), 90, dtype=np.uint8)
    mask = np.zeros((64, 400, 4), dtype=np.uint8)
    mask[:8, :16, 2] = 1
    pipeline = A.Compose([transform], seed=0)
    return float(np.mean([pipeline(image=image, mask=mask)["mask"].any() for _ in range(n)]))


def test_crop_non_empty_prefers_the_defect_on_multichannel_masks() -> None:
    assert _hit_rate(A.CropNonEmptyMaskIfExists(32, 64)) == 1.0
    baseline = _hit_rate(A.RandomCrop(32, 64))
    assert baseline < 0.2
    # The seed's pipeline picks the defect-seeking crop half the time.
    assert 0.3 < _hit_rate(severstal_crop_transform(32, 64)) < 0.8


def test_transform_dict_is_yaml_safe_and_round_trips() -> None:
    spec = severstal_crop_transform_dict(256, 416)
    loaded = yaml.safe_load(yaml.safe_dump(spec))
    rebuilt = build_transform(loaded)
    assert A.to_dict(rebuilt) == A.to_dict(severstal_crop_transform(256, 416))
    names = [t["__class_fullname__"] for t in spec["transform"]["transforms"]]
    assert names == ["OneOf", "OneOf", "HorizontalFlip"]
    blur = spec["transform"]["transforms"][1]["transforms"][1]
    assert blur["blur_limit"] == [3, 3]  # the seed's fixed 3×3 kernel, not albumentations' (0, 3)
    any_flip = severstal_crop_transform_dict(256, 416, flip="any")
    build_transform(any_flip)
    with pytest.raises(ValueError, match="flip"):
        severstal_crop_transform(256, 416, flip="diagonal")  # type: ignore[arg-type]
