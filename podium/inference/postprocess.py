"""Post-processing of mask probabilities: thresholds, small components, image-level rule.

Steps, on the CPU in numpy (K×H×W probabilities in):
  1. binarize: multi-class → argmax; a pixel whose winning probability is below
     `thresholds[class]` (if set) becomes `background`. Multi-label → prob ≥ thresholds[c]
     (0.5 when unset), one mask per class.
  2. invalid pixels (`valid` False, e.g. no-data borders) are taken out of every class, so
     they neither join components nor count for the image-level rule;
  3. image-level rules: class c is cleared if its max probability over valid pixels is
     below `image_threshold[c]`, or if the class head's probability for it (or its single
     "has defect" probability) is below `class_threshold[c]`;
  4. min area: 8-connected components of class c smaller than `min_area[c]` pixels are
     removed (multi-class: they become `background`);
  5. ignore fill for invalid pixels: `ignore_fill` None keeps the step-1 prediction there
     (the most likely class), an int writes that value (multi-label: into every class
     mask), "nearest" copies the final label of the nearest valid pixel (L2, cv2's 5×5
     distance transform).
Parameters live in a YAML file (one list entry per class), written by the tuning step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml

from podium.io import atomic_write_text

__all__ = [
    "PostProcess",
    "PostProcessError",
    "apply_postprocess",
    "binarize",
    "broadcast_class_probs",
    "check_class_rule",
    "class_probabilities",
    "fill_invalid",
    "load_postprocess",
    "masks_from_probs",
    "remove_small_components",
    "save_postprocess",
]

_PER_CLASS = ("thresholds", "min_area", "image_threshold", "class_threshold")


class PostProcessError(ValueError):
    """A post-processing parameter (file) is invalid; the message names the key."""


@dataclass(frozen=True)
class PostProcess:
    """Per-class post-processing parameters; each per-class tuple has num_classes entries."""

    num_classes: int
    thresholds: tuple[float, ...] | None = None
    min_area: tuple[int, ...] | None = None
    image_threshold: tuple[float, ...] | None = None
    class_threshold: tuple[float, ...] | None = None  # needs a class head's probabilities
    ignore_fill: int | str | None = None  # None | class id / 0-1 value | "nearest"
    background: int = 0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise PostProcessError("; ".join(problems))


def _per_class_problem(key: str, values: Any, num_classes: int) -> str | None:
    if values is None:
        return None
    if not isinstance(values, (list, tuple)):
        return f"key {key!r} must be a list with one value per class, got {values!r}"
    if len(values) != num_classes:
        return f"key {key!r} has {len(values)} values, expected {num_classes} (one per class)"
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return f"key {key!r} must hold numbers, got {list(values)}"
    if key == "min_area" and any(v < 0 or int(v) != v for v in values):
        return f"key 'min_area' must hold whole numbers ≥ 0, got {list(values)}"
    if key != "min_area" and any(not 0 <= v <= 1 for v in values):
        return f"key {key!r} must hold probabilities in [0, 1], got {list(values)}"
    return None


def _problems(pp: PostProcess) -> list[str]:
    if isinstance(pp.num_classes, bool) or not isinstance(pp.num_classes, int):
        return [f"key 'num_classes' must be a positive integer, got {pp.num_classes!r}"]
    if pp.num_classes < 1:
        return [f"key 'num_classes' must be a positive integer, got {pp.num_classes}"]
    found = [_per_class_problem(k, getattr(pp, k), pp.num_classes) for k in _PER_CLASS]
    problems = [p for p in found if p]
    fill = pp.ignore_fill
    if not (fill is None or fill == "nearest" or (isinstance(fill, int) and fill >= 0)):
        problems.append(f"key 'ignore_fill' must be null, 'nearest' or an int ≥ 0, got {fill!r}")
    if not isinstance(pp.background, int) or not 0 <= pp.background < pp.num_classes:
        problems.append(f"key 'background' must be a class id < num_classes, got {pp.background}")
    return problems


def load_postprocess(path: Path | str, num_classes: int | None = None) -> PostProcess:
    """Read and validate a post-processing YAML; PostProcessError names the file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PostProcessError(f"{path}: cannot read post-processing YAML ({error})") from None
    if not isinstance(raw, dict):
        raise PostProcessError(f"{path}: must hold a mapping of keys to values")
    unknown = sorted(set(raw) - {f.name for f in fields(PostProcess)})
    if unknown:
        raise PostProcessError(f"{path}: unknown key(s) {unknown}")
    if "num_classes" not in raw:
        raise PostProcessError(f"{path}: key 'num_classes' is missing")
    raw = {k: tuple(v) if k in _PER_CLASS and isinstance(v, list) else v for k, v in raw.items()}
    try:
        pp = PostProcess(**raw)
    except PostProcessError as error:
        raise PostProcessError(f"{path}: {error}") from None
    if num_classes is not None and pp.num_classes != num_classes:
        raise PostProcessError(
            f"{path}: key 'num_classes' is {pp.num_classes} but the head has {num_classes}"
        )
    return pp


def save_postprocess(pp: PostProcess, path: Path | str) -> None:
    """Write `pp` as YAML (lists per class), atomically."""
    raw = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(pp).items()}
    atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False))


def _numpy(probs: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    if probs.ndim != 3:
        raise ValueError(f"expected K×H×W probabilities, got shape {probs.shape}")
    return np.asarray(probs, dtype=np.float32)


def binarize(probs: np.ndarray, pp: PostProcess, multilabel: bool) -> np.ndarray:
    """K×H×W probabilities → K×H×W bool class masks (disjoint when multi-class)."""
    k = probs.shape[0]
    if multilabel:
        thresholds = np.asarray(pp.thresholds or (0.5,) * k, dtype=np.float32)
        return probs >= thresholds[:, None, None]
    labels = probs.argmax(0)
    if pp.thresholds is not None:
        winner = np.take_along_axis(probs, labels[None], 0)[0]
        labels = np.where(winner >= np.asarray(pp.thresholds)[labels], labels, pp.background)
    return labels[None] == np.arange(k)[:, None, None]


def remove_small_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    """H×W bool → the same without 8-connected components of fewer than min_area pixels."""
    if min_area <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area  # one lookup per component, not per pixel
    keep[0] = False  # label 0 is the background of this binary mask
    return keep[labels]


def _nearest_valid_index(valid: np.ndarray) -> np.ndarray:
    """H×W bool → H×W flat index of the nearest valid pixel (itself where valid)."""
    _, nearest = cv2.distanceTransformWithLabels(
        (~valid).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # DIST_LABEL_PIXEL numbers the zero (valid) pixels 1..N in row-major order.
    return np.flatnonzero(valid)[nearest - 1]


def fill_invalid(
    out: np.ndarray, original: np.ndarray, valid: np.ndarray, fill: int | str | None
) -> np.ndarray:
    """…×H×W labels/masks → invalid pixels from `original`, `fill`, or the nearest valid."""
    out = out.copy()
    if fill is None:
        out[..., ~valid] = original[..., ~valid]
    elif fill == "nearest":
        if valid.any():
            flat = out.reshape(*out.shape[:-2], -1)
            out = flat[..., _nearest_valid_index(valid)]
    else:
        out[..., ~valid] = fill
    return out


def _labels(masks: np.ndarray, background: int) -> np.ndarray:
    """K×H×W disjoint bool masks → H×W uint8 class ids (background where none)."""
    labels = np.where(masks.any(0), masks.argmax(0), background)
    return labels.astype(np.uint8)


def broadcast_class_probs(class_probs: torch.Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """A class head's (K,) or (1,) probabilities → (num_classes,) float32; one "has defect"
    probability serves every class. PostProcessError for any other size."""
    if isinstance(class_probs, torch.Tensor):
        class_probs = class_probs.detach().float().cpu().numpy()
    values = np.asarray(class_probs, dtype=np.float32).reshape(-1)
    if values.size not in (1, num_classes):
        raise PostProcessError(
            f"the class head has {values.size} outputs; key 'class_threshold' needs 1 or "
            f"{num_classes}"
        )
    return np.broadcast_to(values, (num_classes,))


def class_probabilities(
    class_probs: torch.Tensor | np.ndarray | None, pp: PostProcess
) -> np.ndarray | None:
    """broadcast_class_probs when pp has a class rule, else None; PostProcessError when the
    rule is set but the model has no class head."""
    if pp.class_threshold is None:
        return None
    if class_probs is None:
        raise PostProcessError(
            "key 'class_threshold' needs a model with a class head; remove the key or "
            "predict with a checkpoint that has one"
        )
    return broadcast_class_probs(class_probs, pp.num_classes)


def _cleared_by_image_rules(
    probs: np.ndarray, valid: np.ndarray, pp: PostProcess, image_probs: np.ndarray | None
) -> np.ndarray:
    """(K,) bool: classes an image-level rule clears (max prob or class head too low)."""
    cleared = np.zeros(pp.num_classes, bool)
    if pp.image_threshold:
        peaks = np.array([probs[c][valid].max(initial=0.0) for c in range(pp.num_classes)])
        cleared |= peaks < np.asarray(pp.image_threshold, dtype=np.float32)
    if image_probs is not None:
        cleared |= image_probs < np.asarray(pp.class_threshold, dtype=np.float32)
    return cleared


def apply_postprocess(
    probs: torch.Tensor | np.ndarray,
    pp: PostProcess,
    *,
    multilabel: bool = False,
    valid: np.ndarray | None = None,
    class_probs: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """K×H×W probabilities (+ H×W bool valid, class head (K,)/(1,) probabilities) →
    H×W uint8 class ids, or K×H×W bool masks."""
    probs = _numpy(probs)
    if probs.shape[0] != pp.num_classes:
        raise ValueError(
            f"probabilities have {probs.shape[0]} classes, post-processing has {pp.num_classes}"
        )
    valid = np.ones(probs.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    first = binarize(probs, pp, multilabel)
    masks = first & valid
    masks[_cleared_by_image_rules(probs, valid, pp, class_probabilities(class_probs, pp))] = False
    for c in range(pp.num_classes):
        if pp.min_area:
            masks[c] = remove_small_components(masks[c], int(pp.min_area[c]))
    if multilabel:
        return fill_invalid(masks, first, valid, pp.ignore_fill) if not valid.all() else masks
    out = _labels(masks, pp.background)
    if valid.all():
        return out
    return fill_invalid(out, _labels(first, pp.background), valid, pp.ignore_fill)


def masks_from_probs(
    probs: torch.Tensor,
    activation: str,
    pp: PostProcess | None,
    class_probs: torch.Tensor | None = None,
) -> np.ndarray:
    """K×H×W probabilities (+ a class head's K or 1) → H×W class ids (softmax) or K×H×W 0/1."""
    multilabel = activation == "sigmoid"
    if pp is not None:
        masks = apply_postprocess(probs, pp, multilabel=multilabel, class_probs=class_probs)
        return masks.astype(np.uint8)
    if multilabel:
        return (probs > 0.5).to(torch.uint8).cpu().numpy()
    return probs.argmax(0).to(torch.uint8).cpu().numpy()


def check_class_rule(pp: PostProcess, class_head: str | None, source, tile: int | None) -> None:
    """Fail before the first image when the class-head rule cannot be applied."""
    if pp.class_threshold is None:
        return
    if class_head is None:
        raise ValueError(
            f"{source}: key 'class_threshold' needs a model with a class head; this one has none"
        )
    if tile is not None:
        raise ValueError(
            f"{source}: key 'class_threshold' uses the class head, which tiled inference drops "
            "(a per-window class says nothing of the image); predict without --tile"
        )
