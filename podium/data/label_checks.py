"""Checks of labels other than mask files: Kaggle RLE CSVs, regression rasters, boxes.

Each returns `Problem`s (see podium.data.validation) rather than raising, so a whole CSV or
folder is reported at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from podium.data.errors import DataError
from podium.data.rle import RLEError, parse_rle
from podium.data.sample import Sample
from podium.data.validation import Problem, ValidationReport, header_shape

__all__ = [
    "add_rle_label_problems",
    "check_box_inside",
    "check_finite_raster",
    "check_rle",
    "rle_csv_problems",
    "rle_csv_problems_by_image",
]


def check_rle(
    rle: str | float | None, shape: tuple[int, int], file: str, where: str = ""
) -> Problem | None:
    """A malformed Kaggle RLE string for an (H, W) image, as a Problem (None when fine)."""
    try:
        parse_rle(rle, shape)
    except (RLEError, TypeError) as error:
        prefix = f"{where}: " if where else ""
        return Problem(file, "rle", f"{file}: {prefix}{error}")
    return None


def rle_csv_problems(
    path: Path | str,
    shape: tuple[int, int] | Mapping[str, tuple[int, int]],
    num_classes: int | None = None,
    image_ids: Collection[str] | None = None,
) -> list[Problem]:
    """Every malformed RLE string of a Kaggle CSV (not only the first); shape: one or per image.

    image_ids: the image file names the CSV may name (another is a structural problem).
    """
    by_image = rle_csv_problems_by_image(path, shape, num_classes, image_ids)
    return [problem for problems in by_image.values() for problem in problems]


def rle_csv_problems_by_image(
    path: Path | str,
    shape: tuple[int, int] | Mapping[str, tuple[int, int]],
    num_classes: int | None = None,
    image_ids: Collection[str] | None = None,
) -> dict[str, list[Problem]]:
    """`rle_csv_problems` by ImageId; a structural error (which stops the parse) is keyed ""."""
    from podium.data.rle_csv import read_rle_csv

    path = Path(path)
    try:
        rows = read_rle_csv(path, num_classes=num_classes, image_ids=image_ids)
    except (DataError, OSError, UnicodeDecodeError) as error:
        return {"": [Problem(str(path), "rle_csv", str(error))]}
    problems: dict[str, list[Problem]] = {}
    for image_id, by_class in rows.items():
        image_shape = shape if isinstance(shape, tuple) else shape.get(image_id)
        if image_shape is None:
            continue  # no size known for this image: nothing to check the runs against
        for class_id, rle in by_class.items():
            where = f"ImageId={image_id!r}, ClassId={class_id}"
            problem = check_rle(rle, image_shape, str(path), where)
            if problem is not None:
                problems.setdefault(image_id, []).append(problem)
    return problems


def add_rle_label_problems(
    report: ValidationReport,
    samples: Sequence[Sample],
    csv_path: Path | str,
    num_classes: int,
    image_ids: Collection[str],
) -> None:
    """Check the CSV rows of the samples' images against each image's real (H, W).

    Problems join the report under their sample's image. A structural error of the CSV (a
    malformed row, an ImageId with no file among image_ids) goes under the CSV's own path: it
    spoils every sample's labels, so no skip can drop it.
    """
    shapes = {s.image.name: shape for s in samples if (shape := header_shape(s.image))}
    keys = {s.image.name: str(s.image) for s in samples}
    by_image = rle_csv_problems_by_image(csv_path, shapes, num_classes, image_ids)
    for image_id, problems in by_image.items():
        report.by_sample.setdefault(keys.get(image_id, str(csv_path)), []).extend(problems)


def _read_raster(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile
        except ImportError:
            raise OSError("reading .tif rasters needs tifffile (pip install tifffile)") from None
        return tifffile.imread(path)
    raise OSError(f"unsupported raster type {path.suffix!r} (use .npy, or .tif with tifffile)")


def check_finite_raster(path: Path | str) -> Problem | None:
    """A regression raster (.npy, or .tif via tifffile) that is unreadable or holds NaN/inf."""
    path = Path(path)
    try:
        array = _read_raster(path)
    except (OSError, ValueError) as error:
        return Problem(str(path), "unreadable_raster", f"cannot read raster {path}: {error}")
    if not np.issubdtype(array.dtype, np.floating):
        return None  # integers are always finite
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    if nan or inf:
        message = f"raster {path} holds {nan} NaN and {inf} inf values of {array.size}"
        message += ": mask them out (a valid mask) or fill them before training"
        return Problem(str(path), "nonfinite_raster", message)
    return None


def check_box_inside(
    box: Sequence[float], width: int, height: int, file: str = ""
) -> Problem | None:
    """A pixel box (x1, y1, x2, y2), x2/y2 exclusive, must be finite, non-empty and inside."""
    where = f"{file}: " if file else ""
    if len(box) != 4 or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in box):
        return Problem(file, "box_invalid", f"{where}box {list(box)} is not 4 finite numbers")
    x1, y1, x2, y2 = box
    if not (x1 < x2 and y1 < y2):
        return Problem(file, "box_invalid", f"{where}box {list(box)} is empty or inverted")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        message = f"{where}box {list(box)} reaches outside the {width}×{height} image"
        return Problem(file, "box_outside", message)
    return None
