"""Tune multi-label post-processing per class for Kaggle's mean Dice (Severstal).

For every class independently, a grid search picks the pixel threshold, the minimum connected
component area and, optionally, the image-level rules (max-probability threshold; threshold on a
class head's "has defect" probability) that maximise the mean Kaggle Dice of that class over all
images (a pair with empty prediction and empty truth scores 1).
Classes do not interact in multi-label post-processing, and every class is scored over the same
images, so the per-class optima together maximise the overall mean.

Cost: connected components run once per (image, class, threshold), never per min area. Each
component's area and its overlap with the truth are recorded, after which every min area is a
vectorised sum: kept = area >= min_area, |pred| = Σ kept area, |pred ∩ truth| = Σ kept overlap.
The image-level rules only clear the whole mask (max prob or class probability below its
threshold), so they cost a comparison per candidate pair. On a 256×1600 Severstal strip one
(class, threshold) pass takes ~5 ms on a busy 2-core CPU: the default 10 thresholds × 4 classes
are ~0.2 s per image, whatever the number of min areas or image-level thresholds.

Memory: one image is held at a time (the iterable may stream from disk), plus, transiently, one
H×W int32 component label map; the accumulated scores are C × T × S × K × A float64 values. Probs
are compared in float32, exactly as `apply_postprocess` does, so the tuned parameters reproduce
the tuned score when applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from podium.inference.postprocess import PostProcess, broadcast_class_probs, save_postprocess

__all__ = [
    "DEFAULT_CLASS_THRESHOLDS",
    "DEFAULT_IMAGE_THRESHOLDS",
    "DEFAULT_MIN_AREAS",
    "DEFAULT_THRESHOLDS",
    "component_stats",
    "dice_over_min_areas",
    "tune_postprocess",
]

# 0.30, 0.35, ..., 0.75 (rounded so the YAML reads 0.35, not 0.35000000000000003).
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.30 + 0.05 * i, 2) for i in range(10))
# Image-level rules: max probability below / class head probability below (0 = off is added).
DEFAULT_IMAGE_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_CLASS_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
# Evaluating a min area is nearly free, so the default grid is dense; the top end covers
# Severstal's large class-3/4 defects on 256×1600 strips (winning kernels used ~600-3500).
DEFAULT_MIN_AREAS: tuple[int, ...] = (
    0, 100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000, 3500, 4000, 5000,
)  # fmt: skip


def component_stats(mask: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H×W bool mask and truth → (K,) areas and (K,) truth overlaps of its 8-connected parts."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    # A bool array viewed as uint8 is already the 0/1 image OpenCV wants: no copy.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), 8)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    if not truth.any():  # a clean pair: nothing overlaps, skip the pass over the labels
        return areas, np.zeros_like(areas)
    # Label 0 is background; counting labels under truth pixels gives every overlap at once.
    overlaps = np.bincount(labels[truth], minlength=count)[1:].astype(np.int64)
    return areas, overlaps


def dice_over_min_areas(
    areas: np.ndarray, overlaps: np.ndarray, truth_area: int, min_areas: np.ndarray
) -> np.ndarray:
    """(K,) component areas/overlaps → (A,) float64 Kaggle Dice after each min-area filter."""
    kept = areas[:, None] >= min_areas[None, :]  # K×A; min area 0 or 1 keeps everything
    pred = (areas[:, None] * kept).sum(axis=0)
    inter = (overlaps[:, None] * kept).sum(axis=0).astype(np.float64)
    total = pred + truth_area
    # Same arithmetic as kaggle_dice_per_pair (2·inter / total in float64): scores match it.
    return np.where(total == 0, 1.0, 2 * inter / np.maximum(total, 1))


def _grid(values: Iterable[float], name: str, low: float, high: float | None) -> np.ndarray:
    """Sorted unique float64 grid, checked to lie in [low, high]."""
    grid = np.unique(np.asarray(list(values), dtype=np.float64))
    if grid.size == 0:
        raise ValueError(f"{name} is empty")
    if grid[0] < low or (high is not None and grid[-1] > high):
        raise ValueError(f"{name} must lie in [{low}, {high if high is not None else 'inf'}]")
    return grid


def _as_arrays(probs: Any, truth: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """C×H×W float32 probabilities and bool truth of one image; shapes checked."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    if isinstance(truth, torch.Tensor):
        truth = truth.detach().cpu().numpy()
    probs, truth = np.asarray(probs, dtype=np.float32), np.asarray(truth) != 0
    if probs.ndim != 3 or probs.shape != truth.shape:
        raise ValueError(
            f"image {name!r}: probs {probs.shape} and truth {truth.shape} must both be C×H×W"
        )
    return probs, truth


def _cleared(peak: np.float32, image_prob: np.float32, grids: tuple) -> np.ndarray:
    """S×K bool: the image-level rules clear the class at each (image, class) threshold pair.

    Compared in float32 as apply_postprocess does: max prob < image threshold, or class head
    probability < class threshold.
    """
    _, image_thresholds, class_thresholds, _ = grids
    by_peak = peak < image_thresholds.astype(np.float32)
    by_class = image_prob < class_thresholds.astype(np.float32)
    return by_peak[:, None] | by_class[None, :]


def _image_scores(
    probs: np.ndarray, truth: np.ndarray, image_probs: np.ndarray, grids: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """One image → (C×T×S×K×A Dice for every grid point, (C,) Dice at threshold 0.5 alone).

    image_probs: (C,) class head probabilities (ones when there is no class head).
    """
    thresholds, image_thresholds, class_thresholds, min_areas = grids
    n_classes = probs.shape[0]
    shape = (len(thresholds), len(image_thresholds), len(class_thresholds), len(min_areas))
    out = np.empty((n_classes, *shape))
    baseline = np.empty(n_classes)
    for c in range(n_classes):
        p, g = probs[c], truth[c]
        g_area = int(g.sum())
        empty_score = 1.0 if g_area == 0 else 0.0  # what an empty prediction scores
        cleared = _cleared(p.max(initial=np.float32(0.0)), image_probs[c], grids)[..., None]
        for ti, t in enumerate(thresholds):
            mask = p >= np.float32(t)
            if mask.any():
                dice = dice_over_min_areas(*component_stats(mask, g), g_area, min_areas)
            else:
                dice = np.full(len(min_areas), empty_score)
            out[c, ti] = np.where(cleared, empty_score, dice)
        base = p >= np.float32(0.5)
        inter, total = int((base & g).sum()), int(base.sum()) + g_area
        baseline[c] = 1.0 if total == 0 else 2 * float(inter) / total
    return out, baseline


def _best(scores: np.ndarray) -> tuple[int, ...]:
    """T×S×K×A scores → (t, s, k, a) indices of the first maximum (smallest values win ties)."""
    flat = int(np.argmax(scores))  # C order: lowest threshold, image rules, min area first
    return tuple(int(i) for i in np.unravel_index(flat, scores.shape))


def _result(
    means: np.ndarray, baseline: np.ndarray, grids: tuple, searched: tuple[bool, bool], n_images
) -> tuple[PostProcess, dict[str, Any]]:
    """Mean C×T×S×K×A scores → (PostProcess of per-class optima, report)."""
    thresholds, image_thresholds, class_thresholds, min_areas = grids
    searched_image, searched_class = searched
    picks = [_best(means[c]) for c in range(means.shape[0])]
    classes = [
        {
            "class_id": c + 1,
            "threshold": float(thresholds[t]),
            "min_area": int(min_areas[a]),
            "image_threshold": float(image_thresholds[s]) if searched_image else None,
            "class_threshold": float(class_thresholds[k]) if searched_class else None,
            "dice": float(means[c, t, s, k, a]),
            "baseline_dice": float(baseline[c]),
        }
        for c, (t, s, k, a) in enumerate(picks)
    ]
    pp = PostProcess(
        num_classes=means.shape[0],
        thresholds=tuple(k["threshold"] for k in classes),
        min_area=tuple(k["min_area"] for k in classes),
        image_threshold=tuple(k["image_threshold"] for k in classes) if searched_image else None,
        class_threshold=tuple(k["class_threshold"] for k in classes) if searched_class else None,
    )
    report = {
        "score": float(np.mean([k["dice"] for k in classes])),
        "baseline": float(baseline.mean()),
        "n_images": n_images,
        "classes": classes,
        "grid": {
            "thresholds": thresholds.tolist(),
            "image_thresholds": image_thresholds.tolist() if searched_image else None,
            "class_thresholds": class_thresholds.tolist() if searched_class else None,
            "min_areas": min_areas.astype(int).tolist(),
        },
        "scores": means.tolist(),  # C×T×S×K×A mean Dice, for plots
    }
    return pp, report


def _class_probs(item: tuple, n_classes: int) -> np.ndarray:
    """(C,) float32 class head probabilities of an item; ones (never clear) without a head."""
    if len(item) < 4 or item[3] is None:
        return np.ones(n_classes, dtype=np.float32)
    return broadcast_class_probs(item[3], n_classes)


def _grids(thresholds, min_areas, image_thresholds, class_thresholds) -> tuple:
    """(T, S, K, A) grids; 0.0 (= rule off) is always a candidate of an image-level rule."""
    grids = (
        _grid(thresholds, "thresholds", 0.0, 1.0),
        _grid([0.0, *(image_thresholds or [])], "image_thresholds", 0.0, 1.0),
        _grid([0.0, *(class_thresholds or [])], "class_thresholds", 0.0, 1.0),
        _grid(min_areas, "min_areas", 0.0, None),
    )
    if np.any(grids[3] != np.round(grids[3])):
        raise ValueError(f"min_areas must be whole numbers, got {grids[3].tolist()}")
    return grids


def tune_postprocess(
    probs_iter: Iterable[tuple],
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    min_areas: Sequence[int] | np.ndarray = DEFAULT_MIN_AREAS,
    image_thresholds: Sequence[float] | np.ndarray | None = None,
    output: str | Path | None = None,
    class_thresholds: Sequence[float] | np.ndarray | None = None,
) -> tuple[PostProcess, dict[str, Any]]:
    """Grid-search per-class post-processing on (name, C×H×W probs, C×H×W truth[, class
    probs]) items; class probs: a class head's (C,) or (1,) probabilities.

    Returns the best PostProcess (written with save_postprocess when `output` is given) and a
    report: overall "score" and "baseline" (threshold 0.5 only), per-class picks and the full
    mean-Dice table "scores" (C×T×S×K×A). image_thresholds / class_thresholds None leave that
    image-level rule off; when given, 0.0 (= off) is always a candidate. Ties go to the
    smallest threshold, then image threshold, class threshold, min area.
    """
    searched = (image_thresholds is not None, class_thresholds is not None)
    grids = _grids(
        thresholds,
        min_areas,
        None if image_thresholds is None else list(image_thresholds),
        None if class_thresholds is None else list(class_thresholds),
    )
    total: np.ndarray | None = None
    base_total: np.ndarray | None = None
    n_images = 0
    for item in probs_iter:
        name, probs, truth = item[:3]
        p, g = _as_arrays(probs, truth, name)
        if total is not None and p.shape[0] != total.shape[0]:
            raise ValueError(f"image {name!r} has {p.shape[0]} classes, others {total.shape[0]}")
        if searched[1] and (len(item) < 4 or item[3] is None):
            raise ValueError(f"image {name!r}: class_thresholds need class head probabilities")
        scores, baseline = _image_scores(p, g, _class_probs(item, p.shape[0]), grids)
        # Summed image by image, in order: the same float64 sums a per-pair reference gives.
        total = scores if total is None else total + scores
        base_total = baseline if base_total is None else base_total + baseline
        n_images += 1
    if total is None or base_total is None:
        raise ValueError("no images to tune on")
    pp, report = _result(total / n_images, base_total / n_images, grids, searched, n_images)
    if output is not None:
        save_postprocess(pp, output)
    return pp, report
