"""Kaggle run-length encoding (Severstal convention): 1-based, column-major "start length" pairs.

A mask of shape H x W is flattened in Fortran order (down each column, then the next column to
the right) and pixels are numbered 1..H*W. The string lists each run of foreground pixels as
"start length", space separated, sorted by start, e.g. "1 3 10 5". An empty string means an
empty mask.

Decoding is strict: a malformed string raises `RLEError` rather than silently producing a
wrong mask, because a bad label file otherwise turns into quietly wrong training targets.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["RLEError", "parse_rle", "rle_decode", "rle_encode"]

# Only ASCII digits and ASCII whitespace may appear: this rejects "-3", "1.5", "1e3", "0x10",
# Unicode digits and non-breaking spaces in one C-speed pass over the whole string.
_WHITESPACE = " \t\r\n\f\v"
_VALID = re.compile(r"[0-9 \t\r\n\f\v]*")
_TOKEN_SPLIT = re.compile(r"[ \t\r\n\f\v]+")
_DIGITS = re.compile(r"[0-9]+")
# 19+ digits: keeping every value below 1e18 means start + length cannot overflow int64, and
# anything that long is past the end of any real image anyway.
_TOO_LONG = re.compile(r"[0-9]{19,}")


class RLEError(ValueError):
    """A malformed run-length string; `reason` is the bare message so callers can add context."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def with_context(self, context: str) -> RLEError:
        """Return a new error whose message is "<context>: <reason>" (e.g. file and CSV row)."""
        return RLEError(f"{context}: {self.reason}")


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Validate an (H, W) shape of positive ints; returns it as plain ints."""
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape!r}")
    height, width = (int(s) for s in shape)
    if height < 1 or width < 1 or (height, width) != tuple(shape):
        raise ValueError(f"shape must be two positive integers, got {shape!r}")
    return height, width


def _is_missing(rle: object) -> bool:
    """True for None, NaN (how pandas reads an empty CSV cell) and blank strings."""
    if rle is None:
        return True
    if isinstance(rle, (float, np.floating)):
        if math.isnan(rle):
            return True
        raise TypeError(f"rle must be a string, got the number {rle!r}")
    if not isinstance(rle, str):
        raise TypeError(f"rle must be a string, got {type(rle).__name__}")
    # ASCII whitespace only, matching what the parser accepts between tokens.
    return not rle.strip(_WHITESPACE)


def _parse_numbers(rle: str) -> np.ndarray:
    """Convert a non-blank "start length ..." string to an int64 array (N, 2); raises RLEError."""
    if not _VALID.fullmatch(rle):
        # Slow path, only to name the offending token once we know something is wrong.
        tokens = _TOKEN_SPLIT.split(rle.strip(_WHITESPACE))
        idx, tok = next((i, t) for i, t in enumerate(tokens) if not _DIGITS.fullmatch(t))
        raise RLEError(
            f"token {idx + 1} ({tok!r}) is not a non-negative integer "
            "(negative numbers, decimals and other characters are not allowed)"
        )
    if match := _TOO_LONG.search(rle):
        idx = len(rle[: match.start()].split())
        raise RLEError(f"token {idx + 1} ({match.group()[:24]}...) is too large for any image")
    # Only ASCII digits and whitespace are left, which np.fromstring parses exactly, and several
    # times faster than str.split + np.array on Severstal-size masks with many runs.
    values = np.fromstring(rle, dtype=np.int64, sep=" ")
    if values.size % 2:
        raise RLEError(
            f"odd number of tokens ({values.size}); expected space-separated 'start length' pairs"
        )
    return values.reshape(-1, 2)


def _validate_runs(starts: np.ndarray, lengths: np.ndarray, height: int, width: int) -> None:
    """Raise RLEError unless runs (each of shape (N,)) are positive, in bounds, sorted, disjoint."""
    n_pixels = height * width
    ends = starts + lengths - 1  # last pixel of each run, 1-based, inclusive

    def first(bad: np.ndarray) -> int:
        return int(np.flatnonzero(bad)[0])

    if (bad := lengths < 1).any():
        i = first(bad)
        raise RLEError(f"run {i + 1} (start {starts[i]}, length {lengths[i]}): length must be >= 1")
    if (bad := starts < 1).any():
        i = first(bad)
        raise RLEError(
            f"run {i + 1} (start {starts[i]}, length {lengths[i]}): start must be >= 1 "
            "(Kaggle numbers pixels from 1)"
        )
    if (bad := ends > n_pixels).any():
        i = first(bad)
        raise RLEError(
            f"run {i + 1} (start {starts[i]}, length {lengths[i]}) ends at pixel {ends[i]}, "
            f"past the last pixel {n_pixels} of a {height}x{width} image"
        )
    if (bad := starts[1:] < starts[:-1]).any():
        i = first(bad) + 1
        raise RLEError(
            f"run {i + 1} (start {starts[i]}) comes after run {i} (start {starts[i - 1]}): "
            "runs must be sorted by start"
        )
    # Sorted runs are pairwise disjoint iff each starts after the previous one ends, so checking
    # neighbours finds the first overlap even when one long run swallows several later ones.
    if (bad := starts[1:] <= ends[:-1]).any():
        i = first(bad) + 1
        raise RLEError(
            f"run {i + 1} (pixels {starts[i]}..{ends[i]}) overlaps run {i} "
            f"(pixels {starts[i - 1]}..{ends[i - 1]})"
        )


def parse_rle(rle: str | float | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validate an RLE string against an (H, W) image; returns 1-based starts (N,), lengths (N,)."""
    height, width = _check_shape(shape)
    if _is_missing(rle):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    pairs = _parse_numbers(rle)  # type: ignore[arg-type]  # a str once not missing
    starts, lengths = pairs[:, 0].copy(), pairs[:, 1].copy()
    _validate_runs(starts, lengths, height, width)
    return starts, lengths


def rle_decode(rle: str | float | None, shape: tuple[int, int]) -> np.ndarray:
    """Decode a Kaggle RLE string to an (H, W) uint8 {0, 1} mask; raises RLEError if malformed."""
    height, width = _check_shape(shape)
    starts, lengths = parse_rle(rle, (height, width))
    n_pixels = height * width
    # +1 where a run starts, -1 just past where it ends; the running sum is 1 inside runs. Starts
    # are unique and ends are unique (runs are disjoint), so plain fancy-index += is safe.
    delta = np.zeros(n_pixels + 1, dtype=np.int8)
    delta[starts - 1] += 1
    delta[starts - 1 + lengths] -= 1
    flat = np.cumsum(delta[:-1], dtype=np.int8).astype(np.uint8)
    return flat.reshape((height, width), order="F")


def rle_encode(mask: np.ndarray) -> str:
    """Encode an (H, W) bool/integer mask (nonzero = foreground) as a Kaggle RLE string."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    # Float masks are usually probabilities passed by mistake; thresholding is the caller's job.
    if not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.integer)):
        raise TypeError(f"mask must be bool or integer, got dtype {mask.dtype}")
    flat = mask.ravel(order="F") != 0
    # Pad with background on both sides so every run has a rising and a falling edge.
    padded = np.concatenate(([False], flat, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1]) + 1  # 1-based pixel index of each edge
    runs = edges.reshape(-1, 2)
    runs[:, 1] -= runs[:, 0]  # (start, end + 1) -> (start, length)
    return " ".join(map(str, runs.ravel().tolist()))
