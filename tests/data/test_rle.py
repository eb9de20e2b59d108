"""Tests for podium.data.rle: Kaggle's 1-based, column-major run-length encoding."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from podium.data.rle import RLEError, parse_rle, rle_decode, rle_encode

# --- naive references (loops on purpose: obviously right, slow) -------------------------------


def naive_encode(mask: np.ndarray) -> str:
    """Pixel-by-pixel loop in column-major order, numbering pixels from 1."""
    h, w = mask.shape
    runs: list[int] = []
    start = None
    pixel = 0
    for col in range(w):
        for row in range(h):
            pixel += 1
            on = bool(mask[row, col])
            if on and start is None:
                start = pixel
            elif not on and start is not None:
                runs += [start, pixel - start]
                start = None
    if start is not None:
        runs += [start, h * w + 1 - start]
    return " ".join(map(str, runs))


def naive_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Run-by-run, pixel-by-pixel loop; pixel p (1-based) is at row (p-1) % H, col (p-1) // H."""
    h, _ = shape
    out = np.zeros(shape, dtype=np.uint8)
    toks = [int(t) for t in rle.split()]
    for start, length in zip(toks[::2], toks[1::2], strict=True):
        for p in range(start, start + length):
            out[(p - 1) % h, (p - 1) // h] = 1
    return out


# --- hand-computed cases ---------------------------------------------------------------------

# Pixel numbers of a 3x4 image (1-based, column-major):
#    1  4  7 10
#    2  5  8 11
#    3  6  9 12
HAND_MASK = np.array(
    [
        [0, 1, 0, 1],
        [1, 1, 0, 0],
        [1, 0, 0, 1],
    ],
    dtype=np.uint8,
)
# Foreground pixels 2, 3, 4, 5 (one run crossing from column 1 into column 2), 10 and 12.
HAND_RLE = "2 4 10 1 12 1"


def test_hand_computed_encode() -> None:
    assert rle_encode(HAND_MASK) == HAND_RLE
    # Row-major numbering would give "2 1 4 3 9 1 12 1": make sure we are not doing that.
    assert rle_encode(HAND_MASK) != "2 1 4 3 9 1 12 1"


def test_hand_computed_decode() -> None:
    out = rle_decode(HAND_RLE, (3, 4))
    assert out.dtype == np.uint8
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, HAND_MASK)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (np.ones((1, 1), bool), "1 1"),
        (np.ones((2, 2), bool), "1 4"),
        (np.zeros((3, 4), bool), ""),
        (np.eye(3, dtype=bool), "1 1 5 1 9 1"),
        (np.array([[0, 0], [0, 1]], bool), "4 1"),  # last pixel: run ends exactly at H*W
        (np.array([[1, 0], [0, 0]], bool), "1 1"),  # first pixel is pixel 1, not 0
        (np.array([[0, 255, 7]], np.uint8), "2 2"),  # nonzero integers are foreground
    ],
)
def test_small_cases(mask: np.ndarray, expected: str) -> None:
    assert rle_encode(mask) == expected
    np.testing.assert_array_equal(rle_decode(expected, mask.shape), (mask != 0).astype(np.uint8))


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2), bool))
    with pytest.raises(TypeError, match="dtype"):
        rle_encode(np.full((2, 2), 0.7))


@pytest.mark.parametrize("missing", ["", "   ", None, float("nan"), np.float32("nan")])
def test_decode_missing_is_empty(missing: object) -> None:
    out = rle_decode(missing, (3, 4))  # type: ignore[arg-type]
    assert out.shape == (3, 4) and out.dtype == np.uint8 and not out.any()


def test_ascii_whitespace_between_tokens_is_accepted() -> None:
    expected = rle_decode(HAND_RLE, (3, 4))
    for text in ["  2 4 10 1 12 1 ", "2  4\t10 1\n12 1", "\r\n2 4 10 1 12 1\r\n"]:
        np.testing.assert_array_equal(rle_decode(text, (3, 4)), expected)


def test_adjacent_runs_are_accepted() -> None:
    # Not what an encoder emits, but not malformed either: the runs are disjoint and sorted.
    np.testing.assert_array_equal(rle_decode("1 2 3 2", (3, 4)), rle_decode("1 4", (3, 4)))


def test_parse_rle_returns_runs() -> None:
    starts, lengths = parse_rle(HAND_RLE, (3, 4))
    assert starts.tolist() == [2, 10, 12]
    assert lengths.tolist() == [4, 1, 1]


# --- malformed strings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 3", r"odd number of tokens \(3\)"),
        ("1", r"odd number of tokens \(1\)"),
        ("1 a", r"token 2 \('a'\) is not a non-negative integer"),
        ("-1 2", r"token 1 \('-1'\) is not a non-negative integer"),
        ("1 -2", r"token 2 \('-2'\) is not a non-negative integer"),
        ("1.5 2", r"token 1 \('1.5'\)"),
        ("1 2.0", r"token 2 \('2.0'\)"),
        ("1e1 2", r"token 1 \('1e1'\)"),
        ("+1 2", r"token 1 \('\+1'\)"),
        ("1 2 nan 3", r"token 3 \('nan'\)"),
        ("1 ３", r"token 2"),  # full-width digit: str.isdigit() would accept it
        ("1\u00a02 5 1", r"token 1 \('1\\xa02'\)"),  # non-breaking space is not a separator
        ("1 2 x", r"token 3 \('x'\)"),
        ("1 0", r"run 1 \(start 1, length 0\): length must be >= 1"),
        ("1 2 5 0", r"run 2 \(start 5, length 0\): length must be >= 1"),
        ("0 2", r"run 1 \(start 0, length 2\): start must be >= 1"),
        ("11 3", r"run 1 \(start 11, length 3\) ends at pixel 13, past the last pixel 12"),
        ("1 13", r"ends at pixel 13, past the last pixel 12 of a 3x4 image"),
        ("13 1", r"past the last pixel 12"),
        ("99999999999999999999 1", r"token 1 .* too large"),
        ("5 2 1 2", r"run 2 \(start 1\) comes after run 1 \(start 5\): .*sorted"),
        ("1 3 3 2", r"run 2 \(pixels 3..4\) overlaps run 1 \(pixels 1..3\)"),
        ("1 2 1 2", r"run 2 \(pixels 1..2\) overlaps run 1"),
        ("1 10 4 1", r"overlaps"),  # run 2 lies entirely inside run 1
    ],
)
def test_malformed_raises(rle: str, message: str) -> None:
    with pytest.raises(RLEError, match=message):
        rle_decode(rle, (3, 4))


def test_rle_error_is_value_error_and_takes_context() -> None:
    with pytest.raises(ValueError) as info:
        rle_decode("1 0", (3, 4))
    err = info.value
    assert isinstance(err, RLEError)
    wrapped = err.with_context("file train.csv, row 7 (ImageId='a.jpg', ClassId=3)")
    assert isinstance(wrapped, RLEError)
    assert str(wrapped) == f"file train.csv, row 7 (ImageId='a.jpg', ClassId=3): {err.reason}"
    assert wrapped.reason == str(wrapped)


def test_decode_rejects_bad_shape_and_type() -> None:
    with pytest.raises(ValueError, match="shape"):
        rle_decode("1 1", (0, 4))
    with pytest.raises(ValueError, match="shape"):
        rle_decode("1 1", (3,))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rle_decode(5, (3, 4))  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------------

SHAPES = st.tuples(st.integers(1, 50), st.integers(1, 50))


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    """Random H x W bool masks: hypothesis arrays, density-controlled noise, empty and full."""
    shape = draw(SHAPES)
    kind = draw(st.sampled_from(["arrays", "noise", "empty", "full"]))
    if kind == "empty":
        return np.zeros(shape, bool)
    if kind == "full":
        return np.ones(shape, bool)
    if kind == "noise":
        seed = draw(st.integers(0, 2**32 - 1))
        density = draw(st.floats(0.0, 1.0))
        return np.random.default_rng(seed).random(shape) < density
    return draw(arrays(np.bool_, shape))


@settings(max_examples=300, deadline=None)
@given(masks())
@example(np.zeros((1, 1), bool))
@example(np.ones((1, 1), bool))
@example(np.ones((50, 50), bool))
def test_round_trip(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    out = rle_decode(rle, mask.shape)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, mask.astype(np.uint8))
    assert (rle == "") == (not mask.any())


@settings(max_examples=150, deadline=None)
@given(masks())
def test_matches_naive_reference(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    assert rle == naive_encode(mask)
    np.testing.assert_array_equal(rle_decode(rle, mask.shape), naive_decode(rle, mask.shape))


@settings(max_examples=150, deadline=None)
@given(SHAPES, st.integers(0, 2**32 - 1))
def test_decode_of_adjacent_runs_matches_naive(shape: tuple[int, int], seed: int) -> None:
    # Random sorted, disjoint runs that may touch: strings an encoder would not produce.
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    cuts = np.unique(rng.integers(1, n + 2, size=rng.integers(0, 12)))
    pairs = [f"{a} {b - a}" for a, b in zip(cuts[:-1], cuts[1:], strict=True) if rng.random() < 0.7]
    rle = " ".join(pairs)
    np.testing.assert_array_equal(rle_decode(rle, shape), naive_decode(rle, shape))


# --- speed sanity check ----------------------------------------------------------------------


def test_severstal_size_is_fast() -> None:
    # 256 x 1600 is the Severstal image size; i.i.d. noise gives ~100k runs, far more than real
    # labels. The bound is generous (a vectorised codec takes tens of ms) so it cannot flake; it
    # only catches a pathological slowdown.
    mask = np.random.default_rng(0).random((256, 1600)) < 0.5
    t0 = time.perf_counter()
    rle = rle_encode(mask)
    t1 = time.perf_counter()
    out = rle_decode(rle, mask.shape)
    t2 = time.perf_counter()
    np.testing.assert_array_equal(out, mask.astype(np.uint8))
    assert len(rle.split()) > 100_000
    assert t1 - t0 < 2.0, f"encode took {t1 - t0:.3f}s"
    assert t2 - t1 < 2.0, f"decode took {t2 - t1:.3f}s"
