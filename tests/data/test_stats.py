"""Dataset stats against numpy on a tiny hand-made set; JSON and PNG outputs."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from podium.data.errors import DataError
from podium.data.formats import Sample
from podium.data.images import read_image, read_mask
from podium.data.stats import (
    dataset_stats,
    mean_std_from_histograms,
    rle_image_masks,
    stats_from_pairs,
    write_stats_json,
)
from podium.report.stats_plot import plot_dataset_stats

IGNORE = 255
NAMES = ["background", "road", "car"]
SIZES = [(20, 30), (33, 17), (20, 30)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[list[Sample], list[np.ndarray], list[np.ndarray]]:
    """3 PNG images (two sizes) with masks; the last mask holds only background and ignore."""
    root = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(0)
    samples, images, masks = [], [], []
    for i, (h, w) in enumerate(SIZES):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        mask = rng.choice(np.array([0, 1, 2, IGNORE], dtype=np.uint8), size=(h, w))
        if i == 2:
            mask[mask > 0] = rng.choice(np.array([0, IGNORE], dtype=np.uint8), (mask > 0).sum())
        cv2.imwrite(str(root / f"im{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        Image.fromarray(mask).save(root / f"m{i}.png")
        samples.append(Sample(f"im{i}", root / f"im{i}.png", root / f"m{i}.png"))
        images.append(image)
        masks.append(mask)
    return samples, images, masks


def _reader():
    return partial(read_mask, num_classes=3, ignore_index=IGNORE)


def test_mean_std_equal_numpy_over_all_pixels(tiny) -> None:
    samples, images, _ = tiny
    stats = dataset_stats(samples, _reader(), 3, NAMES, progress=False)
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float64) / 255.0
    np.testing.assert_allclose(stats["mean"], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], pixels.std(axis=0), rtol=1e-12)
    assert stats["pixels"] == len(pixels) and stats["channels"] == 3


def test_class_counts_equal_bincount(tiny) -> None:
    samples, _, masks = tiny
    stats = dataset_stats(samples, _reader(), 3, NAMES, progress=False)
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=256)
    assert stats["class_pixels"] == counts[:3].tolist()
    assert stats["ignore_pixels"] == counts[IGNORE]
    assert stats["labelled_pixels"] == counts[:3].sum()
    np.testing.assert_allclose(stats["class_pixel_share"], counts[:3] / counts[:3].sum())
    assert stats["ignore_share"] == pytest.approx(counts[IGNORE] / counts.sum())
    assert stats["class_images"] == [3, 2, 2]
    np.testing.assert_allclose(stats["class_image_share"], [1, 2 / 3, 2 / 3])


def test_sizes_and_empty_share(tiny) -> None:
    samples, _, _ = tiny
    stats = dataset_stats(samples, _reader(), 3, NAMES, progress=False)
    assert stats["image_sizes"] == [
        {"height": 20, "width": 30, "count": 2},
        {"height": 33, "width": 17, "count": 1},
    ]
    assert (stats["empty_images"], stats["num_masks"]) == (1, 3)
    assert stats["empty_share"] == pytest.approx(1 / 3)
    # Without a background class, only a mask with no class at all would count as empty.
    assert (
        dataset_stats(samples, _reader(), 3, NAMES, background_class=None, progress=False)[
            "empty_images"
        ]
        == 0
    )


def test_images_without_masks_count_for_pixels_only(tiny) -> None:
    samples, _, _ = tiny
    unlabelled = [Sample(s.name, s.image) for s in samples[:2]] + samples[2:]
    stats = dataset_stats(unlabelled, _reader(), 3, NAMES, progress=False)
    assert (stats["num_images"], stats["num_masks"]) == (3, 1)
    assert stats["class_images"] == [1, 0, 0]


def test_grey_images_give_one_channel(tiny) -> None:
    samples, _, _ = tiny
    stats = dataset_stats(samples, None, 3, NAMES, channels=1, progress=False)
    grey = np.concatenate([read_image(s.image, 1).ravel() for s in samples]) / 255
    np.testing.assert_allclose(stats["mean"], [grey.mean()], rtol=1e-12)
    np.testing.assert_allclose(stats["std"], [grey.std()], rtol=1e-12)


def test_histogram_moments_are_exact_for_huge_counts() -> None:
    hist = np.zeros((1, 256), dtype=np.int64)
    hist[0, [0, 255]] = 10**12  # float64 running sums of squares would lose digits here
    mean, std = mean_std_from_histograms(hist)
    assert mean == [0.5] and std == [0.5]


def test_json_and_png_are_written(tiny, tmp_path: Path) -> None:
    samples, _, _ = tiny
    stats = dataset_stats(samples, _reader(), 3, NAMES, progress=False)
    write_stats_json(tmp_path / "out" / "stats.json", stats)
    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == stats
    plot_dataset_stats(stats, tmp_path / "out" / "stats.png")
    with Image.open(tmp_path / "out" / "stats.png") as png:
        assert png.format == "PNG" and png.size[0] > 500
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["stats.json", "stats.png"]


def test_bad_inputs_raise(tiny, tmp_path: Path) -> None:
    samples, _, _ = tiny
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        dataset_stats(samples, _reader(), 3, NAMES[:2], progress=False)
    with pytest.raises(ValueError, match="at least one sample"):
        dataset_stats([], _reader(), 3, NAMES, progress=False)
    mismatched = [Sample("x", samples[0].image, samples[1].mask)]
    with pytest.raises(DataError, match="17×33 but image"):
        dataset_stats(mismatched, _reader(), 3, NAMES, progress=False)


# --- multi-label (C×H×W) masks, e.g. decoded Kaggle RLE rows -----------------------------------

# Three grey images; image 1 holds no class, image 2 holds classes 1 and 2 overlapping.
ML_NAMES = ["d1", "d2", "d3", "d4"]
ML_IMAGES = [
    np.array([[0, 51, 102], [153, 204, 255]], np.uint8),
    np.full((2, 2), 51, np.uint8),
    np.array([[0, 255], [255, 0]], np.uint8),
]


def _ml_masks() -> list[np.ndarray]:
    masks = [np.zeros((4, *im.shape), np.uint8) for im in ML_IMAGES]
    masks[0][0, 0, :2] = 1  # class 1: 2 pixels
    masks[0][2, 1, 2] = 1  # class 3: 1 pixel
    masks[2][0, 0, 0] = 1  # class 1: 1 pixel
    masks[2][1] = 1  # class 2: all 4 pixels, overlapping class 1
    return masks


def _check_hand_computed(stats: dict) -> None:
    """The numbers worked out by hand for ML_IMAGES and _ml_masks()."""
    assert stats["class_pixels"] == [3, 4, 1, 0]
    assert stats["class_images"] == [2, 1, 1, 0]
    assert stats["labelled_pixels"] == 14  # every pixel of a labelled image: 6 + 4 + 4
    np.testing.assert_allclose(stats["class_pixel_share"], [3 / 14, 4 / 14, 1 / 14, 0])
    np.testing.assert_allclose(stats["class_image_share"], [2 / 3, 1 / 3, 1 / 3, 0])
    assert (stats["empty_images"], stats["num_masks"], stats["num_images"]) == (1, 3, 3)
    assert stats["empty_share"] == pytest.approx(1 / 3)
    assert stats["ignore_pixels"] == 0 and stats["background_class"] is None
    assert stats["image_sizes"] == [
        {"height": 2, "width": 2, "count": 2},
        {"height": 2, "width": 3, "count": 1},
    ]
    # 0+51+102+153+204+255 + 4·51 + 2·255 = 1479 over 14 pixels
    assert stats["mean"] == [pytest.approx(1479 / 14 / 255, rel=1e-12)]
    values = np.concatenate([im.ravel() for im in ML_IMAGES]) / 255
    assert stats["std"] == [pytest.approx(values.std(), rel=1e-12)]


def test_multi_label_pairs_hand_computed() -> None:
    pairs = [(im[:, :, None], m) for im, m in zip(ML_IMAGES, _ml_masks())]
    stats = stats_from_pairs(pairs, 4, ML_NAMES, background_class=None, progress=False)
    _check_hand_computed(stats)


def test_rle_csv_masks_decode_to_the_same_stats(tmp_path: Path) -> None:
    from podium.data.rle_csv import masks_to_rows, write_rle_csv
    from podium.data.rle_dataset import RleCsvDataset

    rows = []
    for i, (image, masks) in enumerate(zip(ML_IMAGES, _ml_masks())):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), image)
        rows += [r for r in masks_to_rows(f"im{i}.png", masks) if r[2]]  # Kaggle: defects only
    write_rle_csv(tmp_path / "train.csv", rows)
    dataset = RleCsvDataset(tmp_path, tmp_path / "train.csv", num_classes=4, channels=1)
    stats = stats_from_pairs(
        rle_image_masks(dataset), 4, ML_NAMES, None, len(dataset), progress=False
    )
    _check_hand_computed(stats)
    plot_dataset_stats(stats, tmp_path / "stats.png")  # the plot takes multi-label stats too
    assert (tmp_path / "stats.png").stat().st_size > 1000


def test_multi_label_masks_refuse_a_background_class_and_wrong_channels() -> None:
    image, masks = ML_IMAGES[0][:, :, None], _ml_masks()[0]
    with pytest.raises(ValueError, match="no background class"):
        stats_from_pairs([(image, masks)], 4, ML_NAMES, background_class=0, progress=False)
    with pytest.raises(ValueError, match="4×H×W"):
        stats_from_pairs([(image, masks[:3])], 4, ML_NAMES, None, progress=False)
