"""Dataset statistics streamed image by image: channel mean/std, sizes, class frequencies.

Mean and std are exact: each image adds its per-channel 256-bin value histogram to an int64
total, and the moments come from those integer counts at the end, so neither the order of
images nor float rounding of running sums changes the result.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from podium.data.formats import Sample
from podium.data.images import check_mask_size, read_image
from podium.io import atomic_write_text

__all__ = [
    "channel_histograms",
    "dataset_stats",
    "mask_counts",
    "mean_std_from_histograms",
    "write_stats_json",
]

_LEVELS = np.arange(256, dtype=np.int64)


def channel_histograms(image: np.ndarray) -> np.ndarray:
    """H×W×C uint8 → C×256 int64 counts of each value per channel."""
    if image.dtype != np.uint8:
        raise ValueError(f"channel histograms need uint8 images, got {image.dtype}")
    return np.stack(
        [np.bincount(image[..., c].ravel(), minlength=256) for c in range(image.shape[-1])]
    ).astype(np.int64)


def mean_std_from_histograms(hist: np.ndarray) -> tuple[list[float], list[float]]:
    """C×256 value counts → per-channel (mean, population std) on the 0..1 scale."""
    means, stds = [], []
    for row in hist:
        # Python ints hold the sums exactly however many pixels there are.
        n = int(row.sum())
        total = int(row @ _LEVELS)
        squares = int(row @ (_LEVELS * _LEVELS))
        if n == 0:
            raise ValueError("no pixels to take a mean over")
        means.append(total / n / 255.0)
        stds.append(math.sqrt(max(n * squares - total * total, 0)) / n / 255.0)
    return means, stds


def mask_counts(mask: np.ndarray, num_classes: int) -> tuple[np.ndarray, int]:
    """H×W class ids → (C int64 pixel count per class, count of other, i.e. ignore, pixels)."""
    counts = np.bincount(mask.ravel(), minlength=num_classes).astype(np.int64)
    return counts[:num_classes], int(counts[num_classes:].sum())


def dataset_stats(
    samples: Sequence[Sample],
    read_mask: Callable[[Path], np.ndarray] | None,
    num_classes: int,
    class_names: Sequence[str],
    channels: int = 3,
    background_class: int | None = 0,
    progress: bool = True,
) -> dict:
    """One pass over the samples → a JSON-ready dict (keys documented in `_summary`)."""
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    if not samples:
        raise ValueError("dataset_stats needs at least one sample")
    hist = np.zeros((channels, 256), dtype=np.int64)
    sizes: Counter[tuple[int, int]] = Counter()
    class_pixels = np.zeros(num_classes, dtype=np.int64)
    class_images = np.zeros(num_classes, dtype=np.int64)
    ignore = masks = empty = 0
    for sample in tqdm(samples, desc="dataset stats", disable=not progress):
        image = read_image(sample.image, channels)
        hist += channel_histograms(image)
        sizes[image.shape[:2]] += 1
        if sample.mask is None or read_mask is None:
            continue
        counts, ignored = mask_counts(
            check_mask_size(read_mask(sample.mask), image, sample.mask, sample.image), num_classes
        )
        class_pixels += counts
        class_images += counts > 0
        ignore += ignored
        masks += 1
        empty += not _has_foreground(counts, background_class)
    return _summary(
        hist,
        sizes,
        class_pixels,
        class_images,
        ignore,
        masks,
        empty,
        class_names,
        background_class,
        len(samples),
    )


def _has_foreground(counts: np.ndarray, background_class: int | None) -> bool:
    """Whether any class other than the background has a pixel (C counts → bool)."""
    foreground = counts.copy()
    if background_class is not None:
        foreground[background_class] = 0
    return bool(foreground.any())


def _summary(
    hist,
    sizes,
    class_pixels,
    class_images,
    ignore,
    masks,
    empty,
    class_names,
    background_class,
    num_images,
) -> dict:
    """Keys: counts, channel mean/std (0..1), sizes (most common first), per-class lists."""
    mean, std = mean_std_from_histograms(hist)
    labelled = int(class_pixels.sum())
    return {
        "num_images": num_images,
        "num_masks": masks,
        "channels": len(mean),
        "mean": mean,
        "std": std,
        "pixels": int(hist[0].sum()),
        "image_sizes": [{"height": h, "width": w, "count": n} for (h, w), n in sizes.most_common()],
        "class_names": list(class_names),
        "class_pixels": class_pixels.tolist(),
        "class_pixel_share": _shares(class_pixels, labelled),
        "class_images": class_images.tolist(),
        "class_image_share": _shares(class_images, masks),
        "labelled_pixels": labelled,
        "ignore_pixels": ignore,
        "ignore_share": ignore / (labelled + ignore) if labelled + ignore else 0.0,
        "background_class": background_class,
        "empty_images": empty,
        "empty_share": empty / masks if masks else 0.0,
    }


def _shares(counts: np.ndarray, total: int) -> list[float]:
    """Counts divided by total (zeros when total is 0)."""
    return [float(c) / total if total else 0.0 for c in counts]


def write_stats_json(path: Path | str, stats: dict) -> None:
    """Write the stats dict as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(stats, indent=2) + "\n")
