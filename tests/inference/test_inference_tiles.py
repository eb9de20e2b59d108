"""Sliding-window inference: equals whole-image inference where it must, batched, cropped."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from inference_helpers import SPECS, conv_predict_fn, equivariant_predict, random_images

from podium.inference.tiles import blend_weights, sliding_window_predict, window_grid
from podium.inference.tta import tta_apply


def _whole(predict_fn, image: torch.Tensor) -> torch.Tensor:
    return predict_fn(image[None])["mask"][0]


@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (9, 70)])
@pytest.mark.parametrize("blend", ["gaussian", "linear", "constant"])
def test_pointwise_model_tiles_equal_the_whole_image(shape, blend):
    fn = conv_predict_fn(kernel=1)
    image = random_images(1, *shape)[0]
    out = sliding_window_predict(fn, image, tile=16, overlap=0.25, blend=blend, batch_size=3)
    assert set(out) == {"mask"} and out["mask"].shape == (3, *shape)
    torch.testing.assert_close(out["mask"], _whole(fn, image), atol=1e-5, rtol=0)


def _frame_free_pixels(size: tuple[int, int], tile: int, overlap: float) -> torch.Tensor:
    """H×W bool: pixels never on the 1-pixel frame of a window that covers them."""
    ys, xs = (window_grid(n, tile, overlap)[2] for n in size)
    ok = torch.ones(size, dtype=torch.bool)
    for y in ys:
        for x in xs:
            ok[y, x : x + tile] = ok[y + tile - 1, x : x + tile] = False
            ok[y : y + tile, x] = ok[y : y + tile, x + tile - 1] = False
    return ok


def test_3x3_model_with_constant_blend_is_exact_away_from_window_frames():
    fn = conv_predict_fn(kernel=3)
    size = (40, 56)  # exactly (n-1)·stride + tile with tile 16, stride 8: no padding
    assert window_grid(40, 16, 0.5)[:2] == (40, 0) and window_grid(56, 16, 0.5)[:2] == (56, 0)
    image = random_images(1, *size, seed=4)[0]
    out = sliding_window_predict(fn, image, 16, overlap=0.5, blend="constant")["mask"]
    whole = _whole(fn, image)
    inside = _frame_free_pixels(size, 16, 0.5)
    assert inside.sum() > 0.5 * inside.numel()
    torch.testing.assert_close(out[:, inside], whole[:, inside], atol=1e-5, rtol=0)


def test_3x3_model_with_gaussian_blend_is_close_over_the_whole_image():
    fn = conv_predict_fn(kernel=3)
    image = random_images(1, 45, 61, seed=5)[0]  # padding needed on both axes
    out = sliding_window_predict(fn, image, 16, overlap=0.5, blend="gaussian")["mask"]
    diff = (out - _whole(fn, image)).abs()
    inner = diff[:, 1:-1, 1:-1]  # the image border sees zeros whole, reflection tiled
    assert inner.max() < 0.05 and inner.mean() < 0.002
    assert diff.mean() < 0.01


def test_windows_go_through_the_model_in_batches():
    fn = conv_predict_fn(kernel=1)
    sizes: list[int] = []

    def counting(images, inputs=None):
        sizes.append(images.shape[0])
        return fn(images)

    image = random_images(1, 50, 50)[0]
    sliding_window_predict(counting, image, 16, overlap=0.25, batch_size=4)
    count = len(window_grid(50, 16, 0.25)[2]) ** 2
    assert sum(sizes) == count and len(sizes) == math.ceil(count / 4)
    assert all(s <= 4 for s in sizes)


def test_image_smaller_than_the_tile_is_padded_and_cropped_back():
    fn = conv_predict_fn(kernel=1)
    image = random_images(1, 5, 11)[0]
    out = sliding_window_predict(fn, image, (32, 16), overlap=0.5)["mask"]
    torch.testing.assert_close(out, _whole(fn, image), atol=1e-5, rtol=0)


def test_composes_with_tta_and_drops_image_level_heads():
    image = random_images(1, 30, 44)[0]
    tta = functools.partial(tta_apply, equivariant_predict, SPECS, mode="d4")
    out = sliding_window_predict(tta, image, 16, overlap=0.5, batch_size=2, heads=SPECS)
    assert set(out) == {"mask", "labels", "dense", "field"}
    mask_fn = conv_predict_fn(kernel=1)
    tiled = sliding_window_predict(
        functools.partial(tta_apply, mask_fn, {"mask": SPECS["mask"]}, mode="d4"), image, 16
    )["mask"]
    torch.testing.assert_close(tiled, _whole(mask_fn, image), atol=1e-5, rtol=0)
    norms = out["field"].norm(dim=0)
    assert ((norms - 1).abs() < 1e-4).float().mean() > 0.9  # renormalized (zero stays zero)


def test_blend_weights_are_positive_and_peak_in_the_centre():
    for blend in ("gaussian", "linear", "constant"):
        w = blend_weights((16, 12), blend)
        # Even sides put the centre between pixels, so the peak is just below 1.
        assert w.shape == (16, 12) and w.min() > 0 and 0.8 < w.max() <= 1
        assert w[7:9, 5:7].min() == w.max()
    with pytest.raises(ValueError, match="unknown blend 'cosine'"):
        blend_weights(8, "cosine")
    with pytest.raises(ValueError, match="overlap"):
        window_grid(10, 4, 1.0)
