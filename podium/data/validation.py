"""A validation pass over a dataset before training: every image and mask decoded once.

A bad file otherwise surfaces hours into a run (a worker raising mid-epoch) or never (a
truncated JPEG that OpenCV decodes half grey with only a warning). Each problem becomes a
`Problem(file, kind, message)`; `apply_policy` then fails listing them, or drops those samples.

Results are cached per sample, keyed by (path, size, mtime_ns) of its image and mask, so a
second run decodes only what changed.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageFile

from podium.data.errors import DataError
from podium.data.sample import Sample
from podium.io import atomic_write_text

__all__ = [
    "KINDS",
    "Problem",
    "ValidationReport",
    "apply_policy",
    "header_shape",
    "validate_samples",
    "write_validation_report",
]

MaskReader = Callable[[Path], np.ndarray]
# sample, its image's (H, W) as read (None when unreadable) → problems of its other label files
TargetCheck = Callable[[Sample, "tuple[int, int] | None"], "list[Problem]"]
Policy = Literal["error", "skip"]

# Every kind a Problem can have, with what it means (also the legend of the text report).
KINDS: dict[str, str] = {
    "missing_image": "the image file does not exist",
    "empty_file": "the image is a 0-byte file",
    "not_an_image": "the content is no known image format (text, random bytes, ...)",
    "corrupt_image": "a known image format that cannot be decoded (truncated or damaged)",
    "truncated_image": "a JPEG whose data ends early (OpenCV decodes it half grey)",
    "bit_depth": "not 8-bit (OpenCV would silently squash 16-bit or float pixels to 8 bits)",
    "channels": "a channel count the model cannot use as is (e.g. RGBA: alpha dropped)",
    "missing_mask": "the mask file does not exist",
    "unreadable_mask": "the mask cannot be decoded",
    "mask_channels": "an RGB mask where class ids are expected, or the reverse",
    "mask_palette": "a mask colour that is not in data.palette",
    "mask_class_ids": "mask values outside the classes and the ignore index",
    "bad_mask": "the mask reader rejected the mask for another reason",
    "mask_size": "the mask is not the image's size",
    "duplicate_name": "two samples share one name (stem)",
    "rle": "a malformed run-length string",
    "rle_csv": "an RLE CSV with a structural problem",
    "unreadable_raster": "a regression raster (dense target) that cannot be read",
    "nonfinite_raster": "a regression raster holding NaN or inf (without a nodata value)",
    "target_size": "a dense target file that is not its image's size",
    "target_channels": "a dense target file with another channel count than declared",
    "box_invalid": "a box that is not four finite numbers with x1 < x2 and y1 < y2",
    "box_outside": "a box reaching outside its image",
}

_CACHE_VERSION = 2  # 2: entries also key the dense target files
_SHOW = 10  # files an error message lists
# Leading bytes of the formats OpenCV reads; TIFF has two byte orders, WebP sits in RIFF.
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"RIFF", "WEBP"),
    (b"GIF8", "GIF"),
)
# What a model of N input channels accepts: read_image converts grey↔colour on purpose
# (IMREAD_COLOR / IMREAD_GRAYSCALE), but drops an alpha channel, which may hold the content.
_ACCEPTED_CHANNELS = {1: (1, 3), 3: (1, 3)}
_PIL_ERRORS = (OSError, SyntaxError, ValueError)  # what PIL raises for a broken file
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# read_mask's messages (podium/data/images.py) → kinds; first match wins.
_MASK_KINDS = (
    ("cannot read mask", "unreadable_mask"),
    ("is not an RGB image", "mask_channels"),
    ("channels (mode", "mask_channels"),
    ("is not in data.palette", "mask_palette"),
    ("holds class ids", "mask_class_ids"),
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file."""

    file: str
    kind: str
    message: str


@dataclass
class ValidationReport:
    """Problems found, by image path of the sample they make unusable."""

    checked: int
    by_sample: dict[str, list[Problem]] = field(default_factory=dict)
    decoded: int = 0  # samples decoded this time; the rest came from the cache

    @property
    def problems(self) -> list[Problem]:
        return [p for problems in self.by_sample.values() for p in problems]

    @property
    def ok(self) -> bool:
        return not self.by_sample

    def counts(self) -> dict[str, int]:
        """Problem count per kind, most frequent first."""
        return dict(Counter(p.kind for p in self.problems).most_common())

    def files(self) -> list[str]:
        """Every file named by a problem, once, in report order."""
        return list(dict.fromkeys(p.file for p in self.problems))

    def unattached(self, samples: list[Sample]) -> list[Problem]:
        """Problems of no single sample among `samples` (e.g. a malformed RLE CSV)."""
        images = {str(s.image) for s in samples}
        return [p for key, found in self.by_sample.items() if key not in images for p in found]

    def summary(self) -> str:
        if self.ok:
            return f"0 of {self.checked} samples have problems"
        counts = ", ".join(f"{kind}: {n}" for kind, n in self.counts().items())
        return f"{len(self.by_sample)} of {self.checked} samples have problems ({counts})"


# --- per-file checks --------------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    """Image format from the first bytes, whatever the extension says."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return None if name == "WEBP" and head[8:12] != b"WEBP" else name
    return None


def _decode_image(path: Path) -> np.ndarray | None:
    """Full decode, keeping depth and alpha (IMREAD_UNCHANGED); None when OpenCV cannot."""
    try:
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _jpeg_truncated(path: Path, size: int) -> bool:
    """True when the JPEG data ends early: no EOI marker, confirmed by a strict PIL decode."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 64))
        tail = handle.read()
    # Some writers pad after EOI; only a missing marker is worth the second decode.
    if tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return False
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone made PIL lenient: the marker must decide
        return True
    try:
        with Image.open(path) as image:
            image.load()  # raises on truncated data; data after EOI (motion photos) is fine
    except (*_PIL_ERRORS, Image.DecompressionBombError):
        return True  # PIL cannot vouch for it and the end marker is missing
    return False


def _transposed_by_exif(path: Path) -> bool:
    """OpenCV's IMREAD_COLOR applies EXIF orientation; 5-8 swap width and height."""
    try:
        with Image.open(path) as image:
            return image.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING
    except (*_PIL_ERRORS, Image.DecompressionBombError):
        return False


ImageShape = tuple[int, int, bool]  # height, width as the dataset reads it; EXIF-rotated?


def _check_image(path: Path, channels: int) -> tuple[list[Problem], ImageShape | None]:
    """Problems of one image, and its shape as the dataset will see it."""
    name = str(path)
    if not path.is_file():
        return [Problem(name, "missing_image", f"image {path} does not exist")], None
    size = path.stat().st_size
    if size == 0:
        return [Problem(name, "empty_file", f"image {path} is an empty (0-byte) file")], None
    with open(path, "rb") as handle:
        head = handle.read(16)
    fmt = _sniff(head)
    array = _decode_image(path)
    if array is None:
        if fmt is None:
            message = f"{path} is not an image: its first bytes ({head[:8].hex(' ')}) match no "
            message += "image format (wrong file, text or random data)"
            return [Problem(name, "not_an_image", message)], None
        message = f"{path} is a {fmt} file that cannot be decoded: truncated or damaged"
        return [Problem(name, "corrupt_image", message)], None
    problems = []
    if fmt == "JPEG" and _jpeg_truncated(path, size):
        message = f"JPEG {path} is truncated: its data ends early and decodes partly grey"
        problems.append(Problem(name, "truncated_image", message))
    if array.dtype != np.uint8:
        bits = array.dtype.itemsize * 8
        message = (
            f"{path} has {bits}-bit {array.dtype} pixels; podium trains on 8-bit images and "
            "OpenCV would silently squash them: convert to 8-bit with a scaling you choose"
        )
        problems.append(Problem(name, "bit_depth", message))
    found = 1 if array.ndim == 2 else array.shape[2]
    if found not in _ACCEPTED_CHANNELS[channels]:
        message = f"{path} has {found} channels but the model takes {channels}"
        if found in (2, 4):
            message += " (an alpha channel would be dropped: flatten it onto a background)"
        problems.append(Problem(name, "channels", message))
    height, width = array.shape[:2]
    rotated = height != width and _transposed_by_exif(path)
    return problems, (width, height, True) if rotated else (height, width, False)


def _mask_kind(message: str) -> str:
    return next((kind for text, kind in _MASK_KINDS if text in message), "bad_mask")


def _check_mask(mask: Path, image: ImageShape | None, read_mask: MaskReader) -> list[Problem]:
    """Problems of one mask: exists, decodes with the strict reader, has the image's size."""
    name = str(mask)
    if not mask.is_file():
        return [Problem(name, "missing_mask", f"mask {mask} does not exist")]
    if mask.stat().st_size == 0:
        return [Problem(name, "unreadable_mask", f"mask {mask} is an empty (0-byte) file")]
    try:
        array = read_mask(mask)
    except (ValueError, OSError) as error:  # DataError is a ValueError
        return [Problem(name, _mask_kind(str(error)), str(error))]
    if image is not None and tuple(array.shape[:2]) != image[:2]:
        message = (
            f"mask {mask} is {array.shape[1]}×{array.shape[0]} but its image is "
            f"{image[1]}×{image[0]} (width×height)"
        )
        if image[2]:
            message += ": the image's EXIF orientation rotates it when read, the mask is not"
        return [Problem(name, "mask_size", message)]
    return []


def _check_sample(
    sample: Sample, channels: int, read_mask: MaskReader | None, check_targets: TargetCheck | None
) -> list[Problem]:
    problems, shape = _check_image(sample.image, channels)
    if sample.mask is not None and read_mask is not None:
        problems += _check_mask(sample.mask, shape, read_mask)
    if check_targets is not None:
        problems += check_targets(sample, shape[:2] if shape is not None else None)
    return problems


# --- cache ------------------------------------------------------------------------------------


def _stat_key(path: Path | None) -> list | None:
    """[path, size, mtime_ns]: a change in any of them means decode again."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _reader_key(read_mask: MaskReader | None) -> str:
    """A name for the mask reader that is the same in every process (no memory addresses)."""
    if read_mask is None:
        return "none"
    if isinstance(read_mask, functools.partial):
        func = read_mask.func
        keywords = sorted(read_mask.keywords.items())
        return f"{func.__module__}.{func.__qualname__}{read_mask.args!r}{keywords!r}"
    return f"{getattr(read_mask, '__module__', '')}.{getattr(read_mask, '__qualname__', '')}"


def _load_cache(path: Path | None, settings: dict[str, Any]) -> dict[str, Any]:
    """Cached entries by image path; empty when absent, unreadable or made with other settings."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a re-decode
    if not isinstance(data, dict) or data.get("settings") != settings:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _entry_key(sample: Sample, read_mask: MaskReader | None) -> list | None:
    image = _stat_key(sample.image)
    if image is None:
        return None  # a missing image is checked again every time (it is cheap)
    mask = _stat_key(sample.mask) if read_mask is not None else None
    targets = [[key, _stat_key(path)] for key, path in sorted(sample.targets.items())]
    return [image, mask, targets]


def _from_cache(entry: Any, key: list) -> list[Problem] | None:
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    return [Problem(*p) for p in entry.get("problems", [])]


# --- the pass ---------------------------------------------------------------------------------


def validate_samples(
    samples: list[Sample],
    channels: int,
    read_mask: MaskReader | None,
    cache_path: Path | None,
    threads: int | None = None,
    check_targets: TargetCheck | None = None,
) -> ValidationReport:
    """Decode every image and mask once (cached by path, size and mtime); report problems.

    channels: the model's input channels (1 or 3). read_mask: the strict mask reader (e.g.
    `podium.build.mask_reader(config)`); None skips masks. threads: decode in parallel
    (OpenCV and PIL release the GIL); default min(8, cores). check_targets: the checks of the
    samples' other label files (e.g. dense targets), cached with them.
    """
    if channels not in _ACCEPTED_CHANNELS:
        raise ValueError(f"channels must be 1 or 3 (what podium's image reader reads): {channels}")
    settings = {
        "version": _CACHE_VERSION,
        "channels": channels,
        "reader": _reader_key(read_mask),
        "targets": _reader_key(check_targets),
    }
    cache_path = Path(cache_path) if cache_path is not None else None
    cached = _load_cache(cache_path, settings)
    keys = [_entry_key(s, read_mask) for s in samples]
    results: list[list[Problem] | None] = [
        _from_cache(cached.get(str(s.image)), k) if k is not None else None
        for s, k in zip(samples, keys)
    ]
    todo = [i for i, r in enumerate(results) if r is None]
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = pool.map(
            lambda i: _check_sample(samples[i], channels, read_mask, check_targets), todo
        )
        for i, problems in zip(todo, checked):
            results[i] = problems
    if cache_path is not None:
        entries = {
            str(s.image): {"key": k, "problems": [[p.file, p.kind, p.message] for p in r or []]}
            for s, k, r in zip(samples, keys, results)
            if k is not None
        }
        atomic_write_text(cache_path, json.dumps({"settings": settings, "entries": entries}))
    report = ValidationReport(checked=len(samples), decoded=len(todo))
    for sample, problems in zip(samples, results):
        if problems:
            report.by_sample.setdefault(str(sample.image), []).extend(problems)
    _add_duplicate_names(samples, report)
    return report


def _add_duplicate_names(samples: list[Sample], report: ValidationReport) -> None:
    """Names key predictions, folds and RLE rows: a second sample with one name is a problem."""
    first: dict[str, Sample] = {}
    for sample in samples:
        if sample.name in first:
            message = (
                f"{sample.image} has the name {sample.name!r} of {first[sample.name].image}: "
                "rename one (predictions and folds are keyed by name)"
            )
            problem = Problem(str(sample.image), "duplicate_name", message)
            report.by_sample.setdefault(str(sample.image), []).append(problem)
        else:
            first[sample.name] = sample


def write_validation_report(report: ValidationReport, path: Path | str) -> Path:
    """Write the report atomically: JSON for a .json path, readable text otherwise."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = {
            "checked": report.checked,
            "samples_with_problems": len(report.by_sample),
            "counts": report.counts(),
            "problems": [p.__dict__ for p in report.problems],
        }
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
        return path
    lines = [f"Validated {report.checked} samples: {len(report.by_sample)} with problems.", ""]
    for kind, count in report.counts().items():
        lines.append(f"{count:6d}  {kind}: {KINDS.get(kind, '')}")
    lines.append("")
    lines += [f"{p.kind}\t{p.file}\t{p.message}" for p in report.problems]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def apply_policy(
    samples: list[Sample],
    report: ValidationReport,
    policy: Policy,
    report_path: Path | None = None,
) -> list[Sample]:
    """error: raise DataError naming counts by kind and the first files; skip: the good samples."""
    if policy not in ("error", "skip"):
        raise ValueError(f"validation policy must be 'error' or 'skip', got {policy!r}")
    if report.ok:
        return list(samples)
    # A problem of no single sample (e.g. a malformed RLE CSV) spoils them all: no skip drops it.
    stuck = report.unattached(samples)
    if policy == "skip" and not stuck:
        return [s for s in samples if str(s.image) not in report.by_sample]
    problems = stuck if policy == "skip" else report.problems
    advice = "Fix or remove these files, or skip them (validation policy 'skip')."
    if policy == "skip":
        advice = "Fix them: they belong to no single sample, so skipping cannot drop them."
    shown = "; ".join(f"{p.file} [{p.kind}]: {p.message}" for p in problems[:_SHOW])
    where = f" Full list: {report_path}." if report_path is not None else ""
    raise DataError(
        f"data validation failed: {report.summary()}. First {min(_SHOW, len(problems))}: "
        f"{shown}.{where} {advice}"
    )


def header_shape(path: Path) -> tuple[int, int] | None:
    """(H, W) as `read_image` will see the image, from its header; None when unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            # OpenCV applies EXIF orientation when it reads; 5-8 swap width and height.
            rotated = image.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING
    except (*_PIL_ERRORS, Image.DecompressionBombError):
        return None
    return (width, height) if rotated else (height, width)
