"""Dense maps move with the image: linear warps match the image's own, flips and crops are
exact, and pad or out-of-frame pixels are never valid."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.data.copy_paste import CopyPaste
from podium.data.dense_augment import augment_dense, linear_twin
from podium.data.errors import DataError

SIZE = (40, 56)


def _smooth(seed: int) -> np.ndarray:
    """H×W float32 integers 20..235 varying slowly, so linear interpolation is well defined."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(20, 235, (5, 7)).astype(np.float32)
    return np.round(cv2.resize(coarse, SIZE[::-1], interpolation=cv2.INTER_CUBIC)).clip(0, 255)


def _run(pipeline: A.Compose, image, dense, valid, seed: int, mask=None):
    pipeline.set_random_seed(seed)
    return augment_dense(pipeline, linear_twin(pipeline), image, mask, {"d": dense}, {"d": valid})


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), data_seed=st.integers(0, 1000))
def test_warped_dense_map_equals_the_warped_image_channel(seed, data_seed):
    values = _smooth(data_seed)
    # Channel 0 carries the values as pixels; channel 1 is 255 wherever the pixel is in frame.
    image = np.stack([values, np.full(SIZE, 255), np.zeros(SIZE)], axis=-1).astype(np.uint8)
    pipeline = A.Compose(
        [
            A.Affine(rotate=(-40, 40), scale=(0.7, 1.3), translate_percent=(-0.2, 0.2), p=1),
            A.Rotate(limit=20, p=0.5),
            A.RandomCrop(24, 32),
        ]
    )
    out_image, _, dense, valid = _run(pipeline, image, values[..., None], np.ones(SIZE, bool), seed)
    valid = valid["d"]
    assert dense["d"].shape == (1, 24, 32) and valid.shape == (24, 32)
    # Same draws: where the image interpolated in-frame pixels, the dense map did the same.
    inside = out_image[..., 1] == 255
    assert not (valid & ~inside).any(), "an out-of-frame pixel counts as valid"
    assert valid.sum() > 0 or not inside.any()
    diff = np.abs(dense["d"][0][valid] - out_image[..., 0][valid].astype(np.float32))
    assert diff.max(initial=0) <= 1.0  # uint8 rounding of the image's fixed-point interpolation


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_flipped_and_cropped_dense_map_is_the_flip_and_crop_of_the_array(seed):
    # The image holds each pixel's source (row, column), so the output says where it came from.
    rows, cols = np.mgrid[0 : SIZE[0], 0 : SIZE[1]]
    image = np.stack([rows, cols, np.zeros(SIZE)], axis=-1).astype(np.uint8)
    values = np.random.default_rng(seed % 1000).normal(size=(*SIZE, 2)).astype(np.float32)
    pipeline = A.Compose(
        [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.Transpose(p=0.5), A.RandomCrop(20, 20)]
    )
    out_image, _, dense, valid = _run(pipeline, image, values, np.ones(SIZE, bool), seed)
    src_rows, src_cols = out_image[..., 0].astype(int), out_image[..., 1].astype(int)
    expected = np.moveaxis(values[src_rows, src_cols], 2, 0)
    np.testing.assert_array_equal(dense["d"], expected)
    assert valid["d"].all()


@pytest.mark.parametrize("fill", [0, 1, 255])
def test_pad_areas_are_invalid_whatever_the_mask_fill(fill):
    values = _smooth(3)[..., None]
    valid = np.ones(SIZE, bool)
    valid[5:9, 10:14] = False  # no-data pixels stay invalid
    image = np.zeros((*SIZE, 3), np.uint8)
    mask = np.ones(SIZE, np.uint8)
    pad = A.Compose([A.PadIfNeeded(48, 64, position="top_left", fill_mask=fill)])
    _, out_mask, dense, ok = _run(pad, image, values, valid, 0, mask)
    ok = ok["d"]
    assert ok.shape == (48, 64) and out_mask.shape == (48, 64)
    assert not ok[SIZE[0] :].any() and not ok[:, SIZE[1] :].any()
    np.testing.assert_array_equal(ok[: SIZE[0], : SIZE[1]], valid)
    np.testing.assert_array_equal(dense["d"][0, : SIZE[0], : SIZE[1]], values[..., 0])


def test_the_mask_keeps_nearest_ids_while_dense_values_interpolate():
    values = _smooth(4)[..., None]
    mask = (np.arange(SIZE[1])[None, :] // 8 % 3).repeat(SIZE[0], 0).astype(np.uint8)
    image = np.zeros((*SIZE, 3), np.uint8)
    pipeline = A.Compose([A.Affine(rotate=(17, 17), scale=(1.1, 1.1), p=1)])
    _, out_mask, dense, _ = _run(pipeline, image, values, np.ones(SIZE, bool), 5, mask)
    assert set(np.unique(out_mask)) <= {0, 1, 2}
    assert len(np.unique(dense["d"])) > len(np.unique(values))  # linear: new in-between values


def test_both_runs_follow_the_item_seed():
    values = _smooth(5)[..., None]
    image = np.zeros((*SIZE, 3), np.uint8)
    pipeline = A.Compose([A.Affine(rotate=(-40, 40), p=1), A.RandomCrop(16, 16)])
    first = _run(pipeline, image, values, np.ones(SIZE, bool), 11)[2]["d"]
    again = _run(pipeline, image, values, np.ones(SIZE, bool), 11)[2]["d"]
    other = _run(pipeline, image, values, np.ones(SIZE, bool), 12)[2]["d"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_copy_paste_cannot_paste_dense_targets():
    with pytest.raises(DataError, match="CopyPaste"):
        linear_twin(A.Compose([CopyPaste(classes=[1])]))
