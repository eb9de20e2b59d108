"""Tests for podium.models.grayscale: 1-channel models recycling a 3-channel first conv."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from podium.heads import make_head
from podium.models.factory import build_model
from podium.models.grayscale import build_grayscale_model, find_first_conv, recycle_first_conv

HEADS = {"mask": make_head("mask", "mask", classes=4, activation="sigmoid")}
SMALL = {"decoder_channels": (16, 16, 8, 8, 8)}  # thin decoder: builds and runs in ms


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """A local 3-channel resnet18 encoder state dict and its first conv kernel."""
    torch.manual_seed(0)
    encoder = get_encoder("resnet18", in_channels=3, weights=None)
    path = tmp_path_factory.mktemp("weights") / "resnet18_enc.pth"
    torch.save(encoder.state_dict(), path)
    return path, encoder.state_dict()["conv1.weight"].clone()


@pytest.fixture(scope="module")
def rgb_model(weights_file) -> nn.Module:
    """A 3-channel model built from the local file, copied per test (one build, not five)."""
    return build_model("Unet", "resnet18", HEADS, str(weights_file[0]), in_channels=3, **SMALL)


@pytest.mark.parametrize("source", ["r", "g", "b", "sum", "mean"])
def test_local_weights_are_recycled_from_the_chosen_source(weights_file, rgb_model, source) -> None:
    kernel = weights_file[1]
    model = copy.deepcopy(rgb_model)
    conv = recycle_first_conv(model, source)
    assert conv is model.encoder.conv1
    assert conv.in_channels == 1 and conv.weight.shape == (64, 1, 7, 7)
    expected = {
        "r": kernel[:, 0:1],
        "g": kernel[:, 1:2],
        "b": kernel[:, 2:3],
        "sum": kernel.sum(1, keepdim=True),
        "mean": kernel.mean(1, keepdim=True),
    }[source]
    assert torch.equal(conv.weight.detach(), expected)
    assert model.encoder._in_channels == 1 and model.encoder.out_channels[0] == 1


def test_factory_entry_point_loads_the_file_then_recycles(weights_file) -> None:
    path, kernel = weights_file
    model = build_grayscale_model("Unet", "resnet18", HEADS, str(path), source="g", **SMALL)
    assert torch.equal(model.encoder.conv1.weight.detach(), kernel[:, 1:2])
    out = model.eval()(torch.rand(2, 1, 32, 64))["mask"]
    assert out.shape == (2, 4, 32, 64)


def test_random_init_works_and_trains() -> None:
    model = build_grayscale_model("Unet", "resnet18", HEADS, None, source="g", **SMALL)
    x = torch.rand(2, 1, 32, 32)
    loss = model(x)["mask"].mean()
    loss.backward()
    assert find_first_conv(model.encoder, 1).weight.grad is not None


def test_sum_reproduces_the_rgb_model_on_repeated_grey_input(rgb_model) -> None:
    rgb = rgb_model.eval()
    grey = copy.deepcopy(rgb)
    recycle_first_conv(grey, "sum")
    x = torch.rand(2, 1, 32, 64)
    with torch.no_grad():
        expected = rgb(x.repeat(1, 3, 1, 1))["mask"]
        got = grey(x)["mask"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_bias_is_kept_and_the_first_three_channel_conv_is_chosen() -> None:
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.Conv2d(3, 8, 3, bias=True), nn.Conv2d(3, 2, 1))
    bias = net[1].bias.detach().clone()
    kernel = net[1].weight.detach().clone()
    conv = recycle_first_conv(net, "b")
    assert conv is net[1] and conv.in_channels == 1
    assert torch.equal(conv.bias.detach(), bias)
    assert torch.equal(conv.weight.detach(), kernel[:, 2:3])
    assert net[2].in_channels == 3  # only the first one is patched


def test_errors() -> None:
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        recycle_first_conv(nn.Sequential(nn.Conv2d(1, 4, 3)), "sum")
    with pytest.raises(ValueError, match="groups"):
        recycle_first_conv(nn.Conv2d(3, 3, 3, groups=3), "sum")
    with pytest.raises(ValueError, match="source"):
        recycle_first_conv(nn.Conv2d(3, 4, 3), "luma")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        build_grayscale_model("Unet", "resnet18", HEADS, None, source="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_channels"):
        build_grayscale_model("Unet", "resnet18", HEADS, None, in_channels=1)
