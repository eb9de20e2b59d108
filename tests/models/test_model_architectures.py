"""The heads/batch-dict contract: every architecture × encoder gives {head: B×C×H×W}."""

from __future__ import annotations

import pytest
import torch

from podium.heads import HEADS, make_head
from podium.models import build_model

ARCHS = [
    "Unet",
    "UnetPlusPlus",
    "FPN",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "Linknet",
    "MAnet",
    "PAN",
    "UPerNet",
    "Segformer",
]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_gives_full_resolution_mask(arch):
    model = build_model(arch, "resnet18", {"mask": make_head("mask", "mask", classes=4)}).eval()
    out = model(torch.randn(1, 3, 128, 160))
    assert set(out) == {"mask"} and out["mask"].shape == (1, 4, 128, 160)


def test_timm_universal_encoder_and_in_channels():
    model = build_model(
        "Unet", "tu-efficientnet_b0", {"mask": make_head("mask", "mask", classes=2)}, in_channels=1
    )
    assert model(torch.randn(2, 1, 64, 96))["mask"].shape == (2, 2, 64, 96)


def test_two_heads_share_encoder_and_decoder():
    specs = {
        "seg": make_head("seg", "mask", classes=3),
        "defects": make_head("defects", "mask", classes=4, activation="sigmoid"),
    }
    model = build_model("FPN", "resnet18", specs)
    out = model(torch.randn(1, 3, 64, 64))
    assert out["seg"].shape == (1, 3, 64, 64) and out["defects"].shape == (1, 4, 64, 64)


def test_input_not_divisible_by_stride_says_what_to_do():
    model = build_model("FPN", "resnet18", {"mask": make_head("mask", "mask", classes=2)})
    with pytest.raises(ValueError, match="divisible by .* 32"):
        model(torch.randn(1, 3, 50, 64))


def test_registry_lists_choices_for_unknown_head_kind():
    assert "mask" in HEADS.names()
    with pytest.raises(KeyError, match="Did you mean 'mask'.*Valid: .*mask"):
        make_head("x", "maks", classes=2)


def test_local_encoder_weights_file_is_loaded(tmp_path):
    source = build_model("Unet", "resnet18", {"mask": make_head("mask", "mask", classes=2)})
    torch.save(source.encoder.state_dict(), tmp_path / "enc.pth")
    model = build_model(
        "Unet",
        "resnet18",
        {"mask": make_head("mask", "mask", classes=2)},
        encoder_weights=str(tmp_path / "enc.pth"),
    )
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
