"""Near-duplicate check: a re-encoded copy is found across splits, distinct images are not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from podium.data.duplicates import dhash, hamming_distances, near_duplicates_across
from podium.data.errors import DataError
from podium.data.formats import list_images
from podium.data.synthetic import make_folder_dataset


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> tuple[dict[str, Path], dict[str, Path]]:
    """Train: 5 images; val: 3 other images plus a JPEG (q=90), slightly darker copy of one."""
    root = make_folder_dataset(tmp_path_factory.mktemp("dup"), n=8, size=(128, 128), seed=3)
    images = list_images(root / "images")
    names = sorted(images)
    train = {n: images[n] for n in names[:5]}
    val = {n: images[n] for n in names[5:]}
    original = cv2.imread(str(images[names[2]]))
    copy = cv2.convertScaleAbs(original, alpha=0.98, beta=-2)
    copy_path = root / "copy_of_2.jpg"
    cv2.imwrite(str(copy_path), copy, [cv2.IMWRITE_JPEG_QUALITY, 90])
    val["copy_of_2"] = copy_path
    return train, val


def test_recompressed_copy_is_found_and_nothing_else(splits) -> None:
    train, val = splits
    found = near_duplicates_across(train, val, max_distance=4)
    assert [(t, v) for t, v, _ in found] == [("sample_0002", "copy_of_2")]
    assert 0 <= found[0][2] <= 4


def test_distinct_images_are_far_apart(splits) -> None:
    train, val = splits
    distinct = {k: v for k, v in val.items() if k != "copy_of_2"}
    assert near_duplicates_across(train, distinct, max_distance=12) == []


def test_chunking_does_not_change_the_answer(splits) -> None:
    train, val = splits
    assert near_duplicates_across(train, val, 20, chunk=2) == near_duplicates_across(train, val, 20)


def test_hamming_distances_match_bit_counts(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, size=7, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = np.concatenate([a[:2], rng.integers(0, 2**63, size=5, dtype=np.uint64)])
    expected = [[bin(int(x) ^ int(y)).count("1") for y in b] for x in a]
    assert hamming_distances(a, b).tolist() == expected
    monkeypatch.delattr(np, "bitwise_count")  # the numpy 1.x lookup-table path
    assert hamming_distances(a, b).tolist() == expected


def test_dhash_ignores_brightness_and_colour_averaging() -> None:
    grey = np.random.default_rng(1).integers(0, 200, size=(40, 60)).astype(np.uint8)
    assert dhash(grey) == dhash(grey + 20)
    assert dhash(np.repeat(grey[:, :, None], 3, axis=2)) == dhash(grey)


def test_unreadable_image_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png"):
        near_duplicates_across({"bad": tmp_path / "bad.png"}, {})
