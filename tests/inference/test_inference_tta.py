"""TTA: D4 algebra per head kind, equivariant models unchanged by TTA, one forward per chunk."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from inference_helpers import (
    SPECS,
    equivariant_predict,
    pointwise_module,
    random_images,
    smooth_images,
    tiny_module,
)

from podium.geometry import inverse_image, transform_image
from podium.heads import make_head
from podium.inference.forward import predict_probabilities
from podium.inference.tta import TTA_MODES, tta_apply, tta_predict, tta_transforms

ALL_D4 = TTA_MODES["d4"]


def _output(kind: str, batch: int, channels: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind in ("mask", "dense"):
        return torch.randn((batch, channels, h, w), generator=g)
    if kind == "vector":  # a B×2 orientation when channels is odd, else a B×2k×H×W field
        shape = (batch, 2) if channels % 2 else (batch, channels, h, w)
        return torch.randn(shape, generator=g)
    if kind in ("scalar", "class"):
        return torch.randn((batch, channels), generator=g)
    corners = torch.rand((batch, 2, 2), generator=g).sort(dim=1).values  # x1≤x2, y1≤y2
    return corners.transpose(1, 2).reshape(batch, 4)[:, [0, 2, 1, 3]]


@settings(max_examples=60, deadline=None)
@given(
    t=st.sampled_from(ALL_D4),
    kind=st.sampled_from(["mask", "dense", "vector", "scalar", "class", "box"]),
    batch=st.integers(1, 3),
    channels=st.integers(1, 4),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    seed=st.integers(0, 1000),
)
def test_augment_then_deaugment_is_identity(t, kind, batch, channels, h, w, seed):
    x = _output(kind, batch, channels, h, w, seed)
    head = {"vector": _vector_head(x)}.get(kind) or next(
        h for h in SPECS.values() if h.kind == kind
    )
    there = head.augment(x, t)
    if x.dim() == 4 and t.swaps_hw:
        assert there.shape[-2:] == (w, h)
    torch.testing.assert_close(head.deaugment(there, t), x, atol=1e-6, rtol=0)


def _vector_head(x: torch.Tensor):
    return SPECS["field"] if x.dim() == 4 else SPECS["direction"]


@pytest.mark.parametrize("t", ALL_D4, ids=lambda t: t.name)
@pytest.mark.parametrize("shape", [(5, 5), (4, 7), (7, 3)])
def test_image_transform_round_trip_and_shape(t, shape):
    x = random_images(2, *shape)
    y = transform_image(x, t)
    assert y.shape[-2:] == (shape[::-1] if t.swaps_hw else shape)
    assert torch.equal(inverse_image(y, t), x)


def test_d4_elements_are_distinct_and_named():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    images = {t.name: transform_image(x, t) for t in ALL_D4}
    assert len(images) == 8
    flat = {tuple(v.flatten().tolist()) + tuple(v.shape) for v in images.values()}
    assert len(flat) == 8
    assert torch.equal(images["transpose"], x.transpose(-1, -2))
    assert torch.equal(images["vflip"], x.flip(-2))
    assert [t.name for t in tta_transforms("d2")] == ["identity", "hflip", "vflip", "rot180"]


@pytest.mark.parametrize("t", ALL_D4, ids=lambda t: t.name)
def test_vector_map_matches_the_gradient_of_a_transformed_ramp(t):
    # f = a·x + b·y has gradient (a, b); transform f, measure its gradient, compare.
    a, b = 0.3, -1.7
    rows, cols = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    f = transform_image((a * cols + b * rows)[None, None], t)[0, 0]
    measured = torch.tensor([[f[0, 1] - f[0, 0], f[1, 0] - f[0, 0]]])
    expected = SPECS["direction"].augment(torch.tensor([[a, b]]), t)
    torch.testing.assert_close(measured, expected)


@pytest.mark.parametrize("t", ALL_D4, ids=lambda t: t.name)
def test_box_map_matches_the_box_of_a_transformed_mask(t):
    h, w = 6, 9
    mask = torch.zeros(1, 1, h, w)
    mask[..., 1:3, 2:7] = 1  # rows 1-2, cols 2-6
    box = torch.tensor([[2 / w, 1 / h, 7 / w, 3 / h]])
    moved = transform_image(mask, t)[0, 0]
    rows, cols = moved.any(1).nonzero()[:, 0], moved.any(0).nonzero()[:, 0]
    hh, ww = moved.shape
    measured = torch.tensor(
        [[cols.min() / ww, rows.min() / hh, (cols.max() + 1) / ww, (rows.max() + 1) / hh]]
    )
    torch.testing.assert_close(SPECS["box"].augment(box, t), measured)


@pytest.mark.parametrize("mode", ["hflip", "vflip", "d2", "d4"])
@pytest.mark.parametrize("reduce", ["mean", "max", "gmean"])
@pytest.mark.parametrize("shape", [(12, 12), (9, 14)])
def test_tta_of_an_equivariant_model_equals_no_tta(mode, reduce, shape):
    images = random_images(3, *shape)
    plain = equivariant_predict(images)
    with_tta = tta_apply(equivariant_predict, SPECS, images, mode=mode, reduce=reduce)
    assert set(with_tta) == set(SPECS)
    for name, value in plain.items():
        torch.testing.assert_close(with_tta[name], value.float(), atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("shape", [(64, 64), (40, 72)])
def test_tta_predict_on_a_pointwise_module_equals_no_tta_with_stride_padding(shape):
    module = pointwise_module()
    images = random_images(2, *shape)  # 40×72 → rot90 gives 72×40; both padded to 32
    plain = predict_probabilities(module, images)["mask"]
    out = tta_predict(module, images, mode="d4")["mask"]
    assert out.shape == (2, 3, *shape)
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=0)


def test_multiscale_keeps_shapes_and_is_close_on_smooth_images():
    module = pointwise_module()
    images = smooth_images(2, 48, 80)
    plain = predict_probabilities(module, images)["mask"]
    out = tta_predict(module, images, mode="hflip", scales=(0.75, 1.0, 1.25))["mask"]
    assert out.shape == plain.shape
    torch.testing.assert_close(out.sum(1), torch.ones_like(out.sum(1)), atol=1e-5, rtol=0)
    assert (out - plain).abs().mean() < 0.01


class CountingPredict:
    """Wraps a predict_fn and records each call's batch size."""

    def __init__(self, fn) -> None:
        self.fn, self.sizes = fn, []

    def __call__(self, images: torch.Tensor, inputs=None) -> dict[str, torch.Tensor]:
        self.sizes.append(images.shape[0])
        return self.fn(images, inputs)


@pytest.mark.parametrize(("max_batch", "calls"), [(None, 1), (24, 1), (5, 5), (8, 3), (1, 24)])
def test_square_d4_batch_goes_through_the_model_once_per_chunk(max_batch, calls):
    images = random_images(3, 10, 10)
    counting = CountingPredict(equivariant_predict)
    out = tta_apply(counting, SPECS, images, mode="d4", max_batch=max_batch)
    assert len(counting.sizes) == calls == math.ceil(24 / (max_batch or 24))
    assert sum(counting.sizes) == 24 and max(counting.sizes) <= (max_batch or 24)
    torch.testing.assert_close(out["mask"], equivariant_predict(images)["mask"].float())


def test_non_square_d4_and_multiscale_make_one_call_per_input_shape():
    counting = CountingPredict(equivariant_predict)
    tta_apply(counting, SPECS, random_images(2, 8, 12), mode="d4")
    assert counting.sizes == [8, 8]  # H×W variants, then W×H variants
    counting = CountingPredict(equivariant_predict)
    tta_apply(counting, SPECS, random_images(2, 8, 8), mode="d4", scales=(0.5, 1.0))
    assert counting.sizes == [16, 16]


def test_tta_predict_calls_the_real_model_once_and_chunks_agree():
    module = tiny_module()
    calls: list[int] = []
    module.model.register_forward_hook(lambda m, args, out: calls.append(args[0]["image"].shape[0]))
    images = random_images(2, 64, 64)
    whole = tta_predict(module, images, mode="d4")
    assert calls == [16]
    chunked = tta_predict(module, images, mode="d4", max_batch=6)
    assert calls[1:] == [6, 6, 4]
    torch.testing.assert_close(chunked["mask"], whole["mask"], atol=1e-5, rtol=0)
    assert set(whole) == set(module.heads)


def test_bad_arguments_are_named():
    images = random_images(1, 8, 8)
    with pytest.raises(ValueError, match="unknown TTA mode 'd8'"):
        tta_apply(equivariant_predict, SPECS, images, mode="d8")
    with pytest.raises(ValueError, match="reduction 'median'"):
        tta_apply(equivariant_predict, SPECS, images, reduce="median")
    with pytest.raises(KeyError, match="unknown head kind 'blob'.*Valid: class, dense, mask"):
        make_head("x", "blob")
