"""Read and write Kaggle RLE label/submission CSVs (Severstal Steel Defect Detection layouts).

Two layouts are read:

* ``ImageId,ClassId,EncodedPixels`` (current), e.g. ``0002cc93b.jpg,1,29102 12 29346 24``;
* ``ImageId_ClassId,EncodedPixels`` (older), e.g. ``0002cc93b.jpg_1,29102 12 29346 24``.

Both parse to ``{image_id: {class_id: rle}}`` with 1-based class ids as in Kaggle. A row with an
empty EncodedPixels is kept as ``""`` (the image was listed, no defect of that class); images
absent from the CSV have no defect at all, so callers iterate over their own list of images.

Errors name the file and the 1-based row number, counting the header as row 1.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import numpy as np

from podium.data.errors import DataError
from podium.data.rle import RLEError, parse_rle, rle_decode, rle_encode

__all__ = [
    "HEADER",
    "LEGACY_HEADER",
    "RLECSVError",
    "decode_image_masks",
    "masks_to_rows",
    "read_rle_csv",
    "write_rle_csv",
]

HEADER = ("ImageId", "ClassId", "EncodedPixels")
LEGACY_HEADER = ("ImageId_ClassId", "EncodedPixels")

Row = tuple[str, int, str]


class RLECSVError(DataError):
    """A structural problem in an RLE CSV (header, duplicate rows, unknown ids, bad class ids)."""


def _where(path: Path, row_no: int) -> str:
    """Location prefix for error messages; row numbers count the header as row 1."""
    return f"file {path}, row {row_no} (1-based, header is row 1)"


def _parse_class_id(text: str, where: str, num_classes: int | None) -> int:
    """Parse a 1-based class id string, checking it against 1..num_classes when given."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise RLECSVError(f"{where}: ClassId {text!r} is not a positive integer")
    class_id = int(text)
    if class_id < 1 or (num_classes is not None and class_id > num_classes):
        bound = f"1..{num_classes}" if num_classes is not None else ">= 1"
        raise RLECSVError(f"{where}: ClassId {class_id} is outside {bound}")
    return class_id


def _split_row(fields: list[str], legacy: bool, where: str) -> tuple[str, str, str]:
    """Split one CSV record into (image_id, class_id text, rle) for either layout."""
    expected = len(LEGACY_HEADER) if legacy else len(HEADER)
    if len(fields) != expected:
        raise RLECSVError(f"{where}: expected {expected} fields, got {len(fields)}: {fields!r}")
    if legacy:
        key, rle = fields
        image_id, sep, class_text = key.strip().rpartition("_")
        if not sep:
            raise RLECSVError(
                f"{where}: ImageId_ClassId {key!r} has no '_' separating image id and class id"
            )
    else:
        image_id, class_text, rle = fields
    image_id = image_id.strip()
    if not image_id:
        raise RLECSVError(f"{where}: empty ImageId")
    return image_id, class_text, rle.strip()


def _detect_layout(header: list[str] | None, path: Path) -> bool:
    """Return True for the legacy ImageId_ClassId layout; raise RLECSVError on any other header."""
    cleaned = tuple(h.strip() for h in header) if header is not None else None
    if cleaned == HEADER:
        return False
    if cleaned == LEGACY_HEADER:
        return True
    found = "an empty file" if header is None else f"header {header!r}"
    raise RLECSVError(
        f"{_where(path, 1)}: found {found}; expected header {','.join(HEADER)!r} "
        f"or {','.join(LEGACY_HEADER)!r}"
    )


def read_rle_csv(
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    image_ids: Collection[str] | None = None,
    shape: tuple[int, int] | None = None,
) -> dict[str, dict[int, str]]:
    """Read a Kaggle RLE CSV (either layout) into {image_id: {class_id (1-based): rle}}.

    num_classes bounds class ids; image_ids, when given, is the set of known images and any other
    id is an error; shape (H, W), when given, validates every RLE string (without building masks).
    """
    path = Path(path)
    known = set(image_ids) if image_ids is not None else None
    out: dict[str, dict[int, str]] = {}
    first_row: dict[tuple[str, int], int] = {}
    # utf-8-sig drops the byte-order mark that Excel and some pandas exports put before "ImageId".
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        legacy = _detect_layout(next(reader, None), path)
        for row_no, fields in enumerate(reader, start=2):
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line (often a trailing newline); still counted as a row
            where = _where(path, row_no)
            image_id, class_text, rle = _split_row(fields, legacy, where)
            class_id = _parse_class_id(class_text, where, num_classes)
            if known is not None and image_id not in known:
                raise RLECSVError(f"{where}: unknown ImageId {image_id!r}")
            key = (image_id, class_id)
            if key in first_row:
                raise RLECSVError(
                    f"{where}: duplicate row for ImageId={image_id!r}, ClassId={class_id} "
                    f"(first seen at row {first_row[key]})"
                )
            first_row[key] = row_no
            if shape is not None:
                try:
                    parse_rle(rle, shape)
                except RLEError as err:
                    ctx = f"{where} (ImageId={image_id!r}, ClassId={class_id})"
                    raise err.with_context(ctx) from err
            out.setdefault(image_id, {})[class_id] = rle
    return out


def decode_image_masks(
    entries: Mapping[int, str],
    shape: tuple[int, int],
    num_classes: int,
    *,
    image_id: str | None = None,
) -> np.ndarray:
    """Decode one image's {class_id: rle} into a (C, H, W) uint8 mask; channel c is class c + 1.

    Missing classes (and an empty `entries`, for images absent from the CSV) decode as empty.
    """
    height, width = shape
    masks = np.zeros((num_classes, height, width), dtype=np.uint8)
    for class_id, rle in entries.items():
        where = f"ImageId={image_id!r}, ClassId={class_id}" if image_id else f"ClassId={class_id}"
        if not 1 <= class_id <= num_classes:
            raise RLECSVError(f"{where}: ClassId is outside 1..{num_classes}")
        try:
            masks[class_id - 1] = rle_decode(rle, shape)
        except RLEError as err:
            raise err.with_context(where) from err
    return masks


def masks_to_rows(image_id: str, masks: np.ndarray) -> list[Row]:
    """Turn one image's (C, H, W) masks into C rows (image_id, class c + 1, rle or "")."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (C, H, W), got shape {masks.shape}")
    # Every class gets a row, empty or not: that is the Kaggle submission form.
    return [(image_id, c + 1, rle_encode(masks[c])) for c in range(masks.shape[0])]


def _open_temp_beside(path: Path) -> tuple[Path, int]:
    """Create a fresh hidden temp file next to path; returns (temp path, open fd)."""
    # O_EXCL guarantees we never clobber someone else's file; mode 0o666 is filtered by the
    # umask, so the final file gets ordinary permissions (mkstemp would force 0o600).
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _fsync_dir(folder: Path) -> None:
    """Best-effort fsync of a directory so the rename itself survives a crash (POSIX only)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_row(row: tuple[str, int, str], index: int) -> Row:
    """Validate one (image_id, class_id, rle) row before writing it; index is 0-based."""
    if len(row) != 3:
        raise ValueError(f"row {index}: expected (image_id, class_id, rle), got {row!r}")
    image_id, class_id, rle = row
    if not isinstance(image_id, str) or not image_id:
        raise ValueError(f"row {index}: image_id must be a non-empty string, got {image_id!r}")
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or class_id < 1:
        raise ValueError(f"row {index}: class_id must be an integer >= 1, got {class_id!r}")
    if not isinstance(rle, str):
        raise ValueError(f"row {index}: rle must be a string, got {type(rle).__name__}")
    return image_id, int(class_id), rle


def write_rle_csv(path: str | os.PathLike[str], rows: Iterable[tuple[str, int, str]]) -> int:
    """Stream rows to an ImageId,ClassId,EncodedPixels CSV atomically; returns the row count.

    Rows go to a temp file in the same folder, which replaces `path` only after every row was
    written and fsynced; on any error the temp file is removed and an existing `path` is intact.
    """
    path = Path(path)
    tmp, fd = _open_temp_beside(path)
    count = 0
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(HEADER)
            for count, row in enumerate(rows, start=1):
                writer.writerow(_check_row(row, count - 1))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # BaseException too: a Ctrl-C mid-write must not leave a stray temp file behind.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return count
