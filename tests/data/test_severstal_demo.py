"""Tests for podium.data.severstal: the synthetic Severstal dataset in Kaggle's layout."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from podium.data.rle_csv import decode_image_masks, read_rle_csv
from podium.data.severstal import NUM_CLASSES, make_severstal_dataset

SHAPE = (64, 400)  # a quarter-scale 256×1600 strip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("severstal")
    return make_severstal_dataset(out, n_train=24, n_test=6, height=SHAPE[0], width=SHAPE[1])


def _ids(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _grey(root: Path, split: str, image_id: str) -> np.ndarray:
    return cv2.imread(str(root / split / image_id), cv2.IMREAD_GRAYSCALE).astype(np.float32)


def test_layout_and_ids(root: Path) -> None:
    train, test = _ids(root / "train_images"), _ids(root / "test_images")
    assert len(train) == 24 and len(test) == 6
    assert not set(train) & set(test)
    assert all(re.fullmatch(r"[0-9a-f]{9}\.jpg", i) for i in train + test)
    for name in ("train.csv", "sample_submission.csv", "test_truth.csv"):
        assert (root / name).read_text().startswith("ImageId,ClassId,EncodedPixels\n")


def test_images_are_grey_strips_in_three_channels(root: Path) -> None:
    image = cv2.imread(str(root / "train_images" / _ids(root / "train_images")[0]))
    assert image.shape == (*SHAPE, 3)
    # Grey saved as colour: JPEG keeps the three channels (nearly) identical.
    assert np.abs(image.astype(int) - image[..., :1]).max() <= 1


def test_train_csv_is_strict_kaggle_and_covers_every_class(root: Path) -> None:
    train = _ids(root / "train_images")
    labels = read_rle_csv(root / "train.csv", num_classes=4, image_ids=train, shape=SHAPE)
    assert all(rle for entries in labels.values() for rle in entries.values())  # defects only
    present = {c for entries in labels.values() for c in entries}
    assert present == {1, 2, 3, 4}
    clean = len(train) - len(labels)
    assert abs(clean - round(0.3 * len(train))) <= 1
    assert any(len(entries) > 1 for entries in labels.values())  # some multi-label images


def test_sample_submission_and_test_truth(root: Path) -> None:
    test = _ids(root / "test_images")
    blank = read_rle_csv(root / "sample_submission.csv", num_classes=4, image_ids=test)
    assert sorted(blank) == test
    assert all(entries == {c: "" for c in range(1, 5)} for entries in blank.values())
    truth = read_rle_csv(root / "test_truth.csv", num_classes=4, image_ids=test, shape=SHAPE)
    assert truth  # the demo keeps the hidden test masks for scoring pseudo labels


def test_classes_have_distinct_signatures_and_never_overlap(root: Path) -> None:
    labels = read_rle_csv(root / "train.csv", num_classes=4)
    contrast: dict[int, list[float]] = {c: [] for c in range(1, NUM_CLASSES + 1)}
    for image_id, entries in labels.items():
        masks = decode_image_masks(entries, SHAPE, NUM_CLASSES).astype(bool)
        assert masks.sum(0).max() <= 1  # one class per pixel
        grey = _grey(root, "train_images", image_id)
        background = np.median(grey[~masks.any(0)])
        for c in entries:
            contrast[c].append(float(grey[masks[c - 1]].mean() - background))
    means = {c: np.mean(v) for c, v in contrast.items()}
    assert means[1] < -10 and means[4] < -10  # dark pits, dark blobs
    assert means[2] > 10 and means[3] > 10  # bright scratches, bright patches
    sizes = {c: [] for c in range(1, 5)}
    for entries in labels.values():
        masks = decode_image_masks(entries, SHAPE, NUM_CLASSES)
        for c in entries:
            sizes[c].append(int(masks[c - 1].sum()))
    # Pits and scratches are small, patches large: shape, not only contrast, separates them.
    assert np.median(sizes[3]) > 3 * max(np.median(sizes[1]), np.median(sizes[2]))


def test_scratches_are_thin_and_vertical(root: Path) -> None:
    labels = read_rle_csv(root / "train.csv", num_classes=4)
    for entries in labels.values():
        if 2 in entries:
            mask = decode_image_masks(entries, SHAPE, NUM_CLASSES)[1]
            rows = mask.any(1).sum()
            assert rows >= 0.3 * SHAPE[0]  # long along the height
            assert mask.sum() <= 3 * 3 * rows  # at most ~3 lines of ~3 pixels per row


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    kw = dict(n_train=4, n_test=2, height=32, width=128)
    a = make_severstal_dataset(tmp_path / "a", seed=5, **kw)
    b = make_severstal_dataset(tmp_path / "b", seed=5, **kw)
    c = make_severstal_dataset(tmp_path / "c", seed=6, **kw)
    assert (a / "train.csv").read_text() == (b / "train.csv").read_text()
    for image_id in _ids(a / "train_images"):
        assert (a / "train_images" / image_id).read_bytes() == (
            b / "train_images" / image_id
        ).read_bytes()
    assert _ids(a / "train_images") != _ids(c / "train_images")


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clean_share"):
        make_severstal_dataset(tmp_path, n_train=1, n_test=1, height=32, width=64, clean_share=2)
    with pytest.raises(ValueError, match="at least 16"):
        make_severstal_dataset(tmp_path, n_train=1, n_test=1, height=8, width=64)


def test_rebuild_is_idempotent_but_refuses_a_foreign_root(tmp_path: Path) -> None:
    kw = dict(n_train=3, n_test=1, height=32, width=64)
    make_severstal_dataset(tmp_path, seed=1, **kw)
    make_severstal_dataset(tmp_path, seed=1, **kw)  # same files again
    with pytest.raises(FileExistsError, match="other file"):
        make_severstal_dataset(tmp_path, seed=2, **kw)
