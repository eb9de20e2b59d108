"""Dataset statistics streamed image by image: channel mean/std, sizes, class frequencies.

Mean and std are exact: each image adds its per-channel 256-bin value histogram to an int64
total, and the moments come from those integer counts at the end, so neither the order of
images nor float rounding of running sums changes the result.

Masks are single-label (H×W class ids, e.g. a folder of PNGs) or multi-label (C×H×W {0,1}, e.g.
decoded Kaggle RLE rows). A class's pixel share is of the labelled pixels: the non-ignore ones
for single-label masks, every pixel of a labelled image for multi-label ones (so it is the share
of the image area the class covers, and classes may overlap).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from podium.data.images import check_mask_size, read_image
from podium.data.sample import Sample
from podium.io import atomic_write_text

__all__ = [
    "channel_histograms",
    "dataset_stats",
    "label_counts",
    "mask_counts",
    "mean_std_from_histograms",
    "rle_image_masks",
    "stats_from_pairs",
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


def label_counts(mask: np.ndarray, num_classes: int) -> tuple[np.ndarray, int, int]:
    """One mask → (C int64 pixels per class, labelled pixels, ignore pixels).

    H×W class ids: labelled = pixels of a class (not ignore). C×H×W multi-label {0,1} masks:
    every pixel is labelled (holding classes or none), a class counts its non-zero pixels.
    """
    if mask.ndim == 2:
        counts, ignored = mask_counts(mask, num_classes)
        return counts, int(counts.sum()), ignored
    if mask.ndim != 3 or mask.shape[0] != num_classes:
        raise ValueError(f"masks must be H×W or {num_classes}×H×W, got shape {mask.shape}")
    counts = np.count_nonzero(mask.reshape(num_classes, -1), axis=1).astype(np.int64)
    return counts, mask.shape[1] * mask.shape[2], 0


@dataclass
class _Tally:
    """Integer running totals of one stats pass (exact whatever the image order)."""

    num_classes: int
    background_class: int | None
    hist: np.ndarray | None = None  # channels×256, sized by the first image
    sizes: Counter = field(default_factory=Counter)
    class_pixels: np.ndarray = field(init=False)
    class_images: np.ndarray = field(init=False)
    images: int = 0
    masks: int = 0
    labelled: int = 0
    ignore: int = 0
    empty: int = 0

    def __post_init__(self) -> None:
        self.class_pixels = np.zeros(self.num_classes, dtype=np.int64)
        self.class_images = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, image: np.ndarray, mask: np.ndarray | None) -> None:
        """One H×W×channels uint8 image and its mask (H×W ids, C×H×W multi-label, or None)."""
        counts = channel_histograms(image)
        self.hist = counts if self.hist is None else self.hist + counts
        self.sizes[image.shape[:2]] += 1
        self.images += 1
        if mask is None:
            return
        if mask.ndim == 3 and self.background_class is not None:
            raise ValueError("multi-label masks have no background class: pass None")
        counts, labelled, ignored = label_counts(mask, self.num_classes)
        self.class_pixels += counts
        self.class_images += counts > 0
        self.labelled += labelled
        self.ignore += ignored
        self.masks += 1
        self.empty += not _has_foreground(counts, self.background_class)


def stats_from_pairs(
    pairs: Iterable[tuple[np.ndarray, np.ndarray | None]],
    num_classes: int,
    class_names: Sequence[str],
    background_class: int | None = 0,
    total: int | None = None,
    progress: bool = True,
) -> dict:
    """(H×W×channels uint8 image, mask) pairs → a JSON-ready dict (keys: see `_summary`).

    A mask is H×W class ids (single-label), C×H×W {0,1} (multi-label: background_class must
    be None, an image with no class at all is empty) or None (counts for pixels and sizes only).
    total: the pair count, for the progress bar.
    """
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    tally = _Tally(num_classes, background_class)
    for image, mask in tqdm(pairs, desc="dataset stats", total=total, disable=not progress):
        tally.add(image, mask)
    if tally.images == 0:
        raise ValueError("dataset stats need at least one sample")
    return _summary(tally, class_names)


def dataset_stats(
    samples: Sequence[Sample],
    read_mask: Callable[[Path], np.ndarray] | None,
    num_classes: int,
    class_names: Sequence[str],
    channels: int = 3,
    background_class: int | None = 0,
    progress: bool = True,
) -> dict:
    """One pass over the samples' image and mask files → `stats_from_pairs`'s dict."""
    pairs = (_read_pair(s, read_mask, channels) for s in samples)
    return stats_from_pairs(
        pairs, num_classes, class_names, background_class, len(samples), progress
    )


def _read_pair(
    sample: Sample, read_mask: Callable[[Path], np.ndarray] | None, channels: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(H×W×channels image, H×W mask checked to the image's size, or None)."""
    image = read_image(sample.image, channels)
    if sample.mask is None or read_mask is None:
        return image, None
    return image, check_mask_size(read_mask(sample.mask), image, sample.mask, sample.image)


def rle_image_masks(dataset) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(H×W×channels image, C×H×W masks) of each sample of an RleCsvDataset, RLE decoded."""
    for index, path in enumerate(dataset.paths):
        image = read_image(path, dataset.channels)
        yield image, dataset.masks(index, image.shape[:2])


def _has_foreground(counts: np.ndarray, background_class: int | None) -> bool:
    """Whether any class other than the background has a pixel (C counts → bool)."""
    foreground = counts.copy()
    if background_class is not None:
        foreground[background_class] = 0
    return bool(foreground.any())


def _summary(tally: _Tally, class_names: Sequence[str]) -> dict:
    """Keys: counts, channel mean/std (0..1), sizes (most common first), per-class lists."""
    mean, std = mean_std_from_histograms(tally.hist)
    labelled, ignore, masks = tally.labelled, tally.ignore, tally.masks
    return {
        "num_images": tally.images,
        "num_masks": masks,
        "channels": len(mean),
        "mean": mean,
        "std": std,
        "pixels": int(tally.hist[0].sum()),
        "image_sizes": [
            {"height": h, "width": w, "count": n} for (h, w), n in tally.sizes.most_common()
        ],
        "class_names": list(class_names),
        "class_pixels": tally.class_pixels.tolist(),
        "class_pixel_share": _shares(tally.class_pixels, labelled),
        "class_images": tally.class_images.tolist(),
        "class_image_share": _shares(tally.class_images, masks),
        "labelled_pixels": labelled,
        "ignore_pixels": ignore,
        "ignore_share": ignore / (labelled + ignore) if labelled + ignore else 0.0,
        "background_class": tally.background_class,
        "empty_images": tally.empty,
        "empty_share": tally.empty / masks if masks else 0.0,
    }


def _shares(counts: np.ndarray, total: int) -> list[float]:
    """Counts divided by total (zeros when total is 0)."""
    return [float(c) / total if total else 0.0 for c in counts]


def write_stats_json(path: Path | str, stats: dict) -> None:
    """Write the stats dict as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(stats, indent=2) + "\n")
