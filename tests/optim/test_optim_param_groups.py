"""Parameter groups: per-part LRs, no decay on norms and biases, each trainable param once."""

from __future__ import annotations

from collections import Counter

import pytest
import segmentation_models_pytorch as smp
from torch import nn

from podium.optim import build_optimizer, build_param_groups, freeze_encoder

NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


class Tiny(nn.Module):
    """encoder / decoder / heads like PodiumModel, with BatchNorm, GroupNorm and LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1, bias=False)
        )
        self.decoder = nn.Sequential(nn.Conv2d(4, 4, 3), nn.GroupNorm(2, 4))
        self.heads = nn.ModuleDict(
            {"mask": nn.Conv2d(4, 2, 1), "cls": nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 3))}
        )


def unet_model() -> nn.Module:
    """A real SMP Unet split into the three PodiumModel parts."""
    unet = smp.Unet("resnet18", encoder_weights=None, classes=2)
    model = nn.Module()
    model.encoder, model.decoder = unet.encoder, unet.decoder
    model.heads = nn.ModuleDict({"mask": unet.segmentation_head})
    return model


def by_name(groups: list[dict]) -> dict[str, dict]:
    return {g["name"]: g for g in groups}


def test_each_part_gets_its_lr_and_unnamed_parts_the_base_lr():
    groups = by_name(
        build_param_groups(
            Tiny(), lr=1e-3, weight_decay=0.01, lr_groups={"encoder": 7e-5, "decoder": 3e-3}
        )
    )
    assert list(groups) == [
        "encoder",
        "encoder_no_decay",
        "decoder",
        "decoder_no_decay",
        "heads",
        "heads_no_decay",
    ]
    for part, lr in {"encoder": 7e-5, "decoder": 3e-3, "heads": 1e-3}.items():
        assert groups[part]["lr"] == groups[f"{part}_no_decay"]["lr"] == lr
        assert groups[part]["weight_decay"] == 0.01
        assert groups[f"{part}_no_decay"]["weight_decay"] == 0.0


@pytest.mark.parametrize("make", [Tiny, unet_model], ids=["tiny", "unet_resnet18"])
def test_norms_and_biases_never_decay_and_other_weights_do(make):
    model = make()
    decay_of = {
        id(p): g["weight_decay"]
        for g in build_param_groups(model, lr=1e-3, weight_decay=0.05)
        for p in g["params"]
    }
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            exempt = isinstance(module, NORMS) or name == "bias"
            assert decay_of[id(p)] == (0.0 if exempt else 0.05), (type(module).__name__, name)


@pytest.mark.parametrize("make", [Tiny, unet_model], ids=["tiny", "unet_resnet18"])
def test_every_trainable_param_in_exactly_one_group_and_frozen_in_none(make):
    model = make()
    freeze_encoder(model)
    groups = build_param_groups(model, lr=1e-3, weight_decay=0.01, lr_groups={"decoder": 1e-2})
    counts = Counter(id(p) for g in groups for p in g["params"])
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(counts) == trainable and set(counts.values()) == {1}
    assert not {id(p) for p in model.encoder.parameters()} & set(counts)
    assert not any(g["name"].startswith("encoder") for g in groups)


def test_tied_parameters_are_grouped_once():
    model = Tiny()
    model.heads["mask"].weight = model.decoder[0].weight  # same tensor in two parts
    counts = Counter(id(p) for g in build_param_groups(model, lr=1e-3) for p in g["params"])
    assert set(counts.values()) == {1}
    assert len(counts) == len(list(model.parameters()))  # parameters() dedups too


def test_no_split_without_decay_or_when_disabled():
    names = [g["name"] for g in build_param_groups(Tiny(), lr=1e-3)]
    assert names == ["encoder", "decoder", "heads"]
    groups = build_param_groups(Tiny(), lr=1e-3, weight_decay=0.1, no_decay_norm_bias=False)
    assert [(g["name"], g["weight_decay"]) for g in groups] == [
        ("encoder", 0.1),
        ("decoder", 0.1),
        ("heads", 0.1),
    ]


def test_params_owned_by_the_model_itself_form_group_other():
    model = Tiny()
    model.temperature = nn.Parameter(model.decoder[0].bias.new_ones(1))
    groups = by_name(build_param_groups(model, lr=1e-3, weight_decay=0.1))
    assert groups["other_no_decay"]["params"] == [model.temperature]


def test_unknown_part_in_lr_groups_lists_the_parts():
    with pytest.raises(ValueError, match="encdoer.*parts are encoder, decoder, heads"):
        build_param_groups(Tiny(), lr=1e-3, lr_groups={"encdoer": 1e-4})


def test_built_optimizer_carries_the_group_lrs_and_names():
    optimizer = build_optimizer(
        unet_model(),
        "adamw",
        lr=1e-3,
        weight_decay=1e-2,
        lr_groups={"encoder": 7e-5, "decoder": 3e-3},
    )
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {
        "encoder": 7e-5,
        "encoder_no_decay": 7e-5,
        "decoder": 3e-3,
        "decoder_no_decay": 3e-3,
        "heads": 1e-3,
        "heads_no_decay": 1e-3,
    }
