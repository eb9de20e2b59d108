"""Dense (per-pixel float) targets: read 8/16-bit PNG, TIFF or .npy rasters, scale, mark no-data.

A target file pairs with its image by stem. Its value is raw · scale + offset (float32); pixels
whose raw value equals `nodata`, or is NaN, are invalid in every channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from podium.data.errors import DataError
from podium.data.sample import Sample
from podium.data.validation import Problem

__all__ = [
    "DENSE_EXTENSIONS",
    "DenseTarget",
    "dense_problems",
    "dense_values",
    "fill_invalid",
    "read_dense",
    "read_raw_target",
]

DENSE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")


@dataclass(frozen=True)
class DenseTarget:
    """How to turn one target's raw file values into float32 values (k channels)."""

    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    channels: int = 1


def read_raw_target(path: Path) -> np.ndarray:
    """H×W×k raw values as stored (uint8/uint16/float...); raises DataError naming the file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            raw = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            raw = tifffile.imread(path)
        elif suffix == ".png":
            # IMREAD_UNCHANGED keeps 16 bits; colour PNGs come back BGR(A): back to file order.
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if raw is None:
                raise OSError("OpenCV cannot decode it (missing, empty or damaged)")
            if raw.ndim == 3 and raw.shape[2] in (3, 4):
                raw = cv2.cvtColor(
                    raw, cv2.COLOR_BGR2RGB if raw.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
                )
        else:
            raise OSError(f"unsupported type {suffix!r} (use {', '.join(DENSE_EXTENSIONS)})")
    except (OSError, ValueError, cv2.error) as error:
        raise DataError(f"cannot read target {path}: {error}") from None
    if raw.ndim not in (2, 3) or raw.size == 0:
        raise DataError(f"target {path} has shape {raw.shape}; expected H×W or H×W×k")
    return raw[:, :, None] if raw.ndim == 2 else raw


def dense_values(raw: np.ndarray, spec: DenseTarget) -> tuple[np.ndarray, np.ndarray]:
    """H×W×k raw → (H×W×k float32 raw·scale + offset, H×W bool valid)."""
    invalid = np.zeros(raw.shape[:2], dtype=bool)
    if spec.nodata is not None:
        invalid |= (raw == spec.nodata).any(axis=2)
    if np.issubdtype(raw.dtype, np.floating):
        invalid |= ~np.isfinite(raw).all(axis=2)
    values = raw.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    return values, ~invalid


def fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """H×W×k values with invalid pixels set to the channel's mean over valid ones (0 if none).

    Keeps NaN and huge no-data codes out of interpolation and out of masked losses (NaN·0 = NaN).
    """
    if valid.all():
        return values
    out = values.copy()
    for c in range(values.shape[2]):
        channel = out[:, :, c]
        good = channel[valid]
        channel[~valid] = good.mean() if good.size else 0.0
    return out


def read_dense(
    path: Path, spec: DenseTarget, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(H×W×k float32 values, invalid pixels filled; H×W bool valid) checked against (H, W)."""
    raw = read_raw_target(path)
    if raw.shape[:2] != tuple(shape) or raw.shape[2] != spec.channels:
        raise DataError(_shape_message(path, raw.shape, shape, spec.channels))
    values, valid = dense_values(raw, spec)
    return fill_invalid(values, valid), valid


def _shape_message(
    path: Path, found: tuple, shape: tuple[int, int], channels: int, image: Path | None = None
) -> str:
    """Why a target of shape `found` (H, W, k) does not fit an (H, W) image of `channels`."""
    height, width = shape
    if found[:2] != (height, width):
        what = f"image {image}" if image is not None else "its image"
        return (
            f"target {path} is {found[1]}×{found[0]} but {what} is {width}×{height} (width×height)"
        )
    return f"target {path} has {found[2]} channel(s) but {channels} are declared (channels:)"


def dense_problems(
    sample: Sample, shape: tuple[int, int] | None, specs: Mapping[str, DenseTarget]
) -> list[Problem]:
    """Problems of a sample's target files: unreadable, not the image's (H, W), channel count."""
    problems = []
    for key, path in sample.targets.items():
        spec = specs[key]
        try:
            raw = read_raw_target(path)
        except DataError as error:
            problems.append(Problem(str(path), "unreadable_raster", str(error)))
            continue
        if shape is not None and raw.shape[:2] != tuple(shape):
            message = _shape_message(path, raw.shape, shape, spec.channels, sample.image)
            problems.append(Problem(str(path), "target_size", message))
        elif raw.shape[2] != spec.channels:
            message = _shape_message(path, raw.shape, raw.shape[:2], spec.channels)
            problems.append(Problem(str(path), "target_channels", message))
        elif spec.nodata is None and np.issubdtype(raw.dtype, np.floating):
            bad = int((~np.isfinite(raw)).sum())
            if bad:
                message = f"target {path} holds {bad} NaN/inf values: set targets.{key}.nodata"
                message += " so no-data pixels are left out of the loss"
                problems.append(Problem(str(path), "nonfinite_raster", message))
    return problems
