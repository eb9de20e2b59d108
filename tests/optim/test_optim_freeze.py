"""Freezing, stage-wise unfreezing, and starting from a previous run's weights / optimizer."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn

from podium.optim import (
    build_optimizer,
    encoder_stages,
    freeze_encoder,
    load_optimizer_state,
    load_weights,
    unfreeze_encoder,
    unfreeze_last_stages,
)


def split(unet: nn.Module) -> nn.Module:
    """An SMP model as PodiumModel's encoder / decoder / heads."""
    model = nn.Module()
    model.encoder, model.decoder = unet.encoder, unet.decoder
    model.heads = nn.ModuleDict({"mask": unet.segmentation_head})
    return model


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    return split(smp.Unet("resnet18", encoder_weights=None, classes=2))


@pytest.fixture(scope="module")
def effnet_b0() -> nn.Module:
    return split(smp.Unet("tu-efficientnet_b0", encoder_weights=None, classes=2))


def trainable_names(module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


def top_names(names: set[str], depth: int) -> set[str]:
    """Names cut to their first `depth` dotted parts (layer4.0.conv1.weight -> layer4)."""
    return {".".join(n.split(".")[:depth]) for n in names}


def test_freeze_encoder_stops_grads_and_bn_stats_even_after_train(resnet18):
    freeze_encoder(resnet18)
    resnet18.train()  # what Lightning does every epoch
    assert not trainable_names(resnet18.encoder)
    assert trainable_names(resnet18.decoder)
    bn = resnet18.encoder.bn1
    before = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    resnet18.encoder(torch.randn(2, 3, 64, 64))
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(
        bn.num_batches_tracked, before[1]
    )
    assert not bn.training
    unfreeze_encoder(resnet18)
    resnet18.train()
    resnet18.encoder(torch.randn(2, 3, 64, 64))
    assert bn.training and not torch.equal(bn.running_mean, before[0])
    assert trainable_names(resnet18.encoder) == {n for n, _ in resnet18.encoder.named_parameters()}


def test_resnet18_stages_are_stem_then_layer1_to_layer4(resnet18):
    stages = encoder_stages(resnet18.encoder)
    assert [top_names(set(s), 1) for s in stages] == [
        {"conv1", "bn1"},
        {"layer1"},
        {"layer2"},
        {"layer3"},
        {"layer4"},
    ]


@pytest.mark.parametrize("n, layers", [(1, {"layer4"}), (2, {"layer3", "layer4"})])
def test_unfreeze_last_stages_resnet18(resnet18, n, layers):
    freeze_encoder(resnet18)
    unfreeze_last_stages(resnet18, n)
    resnet18.train()
    resnet18.encoder(torch.randn(2, 3, 64, 64))  # the forward pre-hook settles frozen BN modes
    assert top_names(trainable_names(resnet18.encoder), 1) == layers
    for name, module in resnet18.encoder.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.training == (name.split(".")[0] in layers), name


def test_unfreeze_last_stage_tu_efficientnet_b0_is_the_stride_32_blocks(effnet_b0):
    freeze_encoder(effnet_b0)
    unfreeze_last_stages(effnet_b0, 1)
    # timm taps efficientnet_b0 at blocks.4 (stride 16) and blocks.6 (stride 32): blocks 5 and 6
    # run at stride 32, which is the deepest stage.
    info = effnet_b0.encoder.model.feature_info
    assert info.module_name()[-2:] == ["blocks.4", "blocks.6"] and info.reduction()[-1] == 32
    assert top_names(trainable_names(effnet_b0.encoder), 3) == {"model.blocks.5", "model.blocks.6"}
    x = torch.randn(1, 3, 64, 64)
    strides: dict[int, int] = {}

    def record(i: int):
        def hook(module, args, out) -> None:
            strides.setdefault(i, 64 // out.shape[-1])

        return hook

    blocks = effnet_b0.encoder.model.blocks
    handles = [block.register_forward_hook(record(i)) for i, block in enumerate(blocks)]
    effnet_b0.encoder(x)
    for handle in handles:
        handle.remove()
    assert {i for i, s in strides.items() if s == 32} == {5, 6}
    unfreeze_last_stages(effnet_b0, 2)
    assert top_names(trainable_names(effnet_b0.encoder), 3) == {
        f"model.blocks.{i}" for i in (3, 4, 5, 6)
    }


def test_unfreeze_more_stages_than_exist_unfreezes_all_and_zero_none(resnet18):
    freeze_encoder(resnet18)
    assert unfreeze_last_stages(resnet18, 0) == []
    assert not trainable_names(resnet18.encoder)
    unfreeze_last_stages(resnet18, 99)
    assert trainable_names(resnet18.encoder) == {n for n, _ in resnet18.encoder.named_parameters()}


def test_stages_fall_back_to_top_level_children_when_the_probe_fails():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = (
                nn.Linear(2, 2),
                nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)),
            )

        def forward(self, x):
            raise RuntimeError("needs a special input")

    assert encoder_stages(Odd()) == [["a"], ["b.0", "b.2"]]


def small(classes: int = 2) -> nn.Module:
    """A small PodiumModel stand-in: a BatchNorm encoder, a decoder and a `mask` head."""
    torch.manual_seed(classes)
    model = nn.Module()
    model.encoder = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    model.decoder = nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU())
    model.heads = nn.ModuleDict({"mask": nn.Conv2d(8, classes, 1)})
    return model


def lightning_ckpt(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["criterion.pos_weight"] = torch.ones(1)  # LightningModule state that is not the model
    return {
        "epoch": 3,
        "state_dict": state,
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": {"lr": 1e-3},
    }


def trained(model: nn.Module, name: str = "adamw", **kwargs) -> torch.optim.Optimizer:
    optimizer = build_optimizer(model, name, lr=1e-3, weight_decay=1e-2, **kwargs)
    for _ in range(2):
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        optimizer.step()
    return optimizer


def test_load_weights_from_a_lightning_ckpt(tmp_path):
    source = small()
    torch.save(lightning_ckpt(source, trained(source)), tmp_path / "last.ckpt")
    target = small()
    report = load_weights(target, tmp_path / "last.ckpt")
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_load_weights_reports_shape_mismatch_missing_and_unexpected(tmp_path, caplog):
    source = small(classes=2)
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(1)
    dropped = next(k for k in state if k.startswith("decoder."))
    del state[dropped]
    torch.save(state, tmp_path / "plain.pt")  # a plain state_dict file, no Lightning wrapper
    target = small(classes=5)  # a new head: different shape
    report = load_weights(target, tmp_path / "plain.pt")
    assert report.mismatched == ["heads.mask.bias", "heads.mask.weight"]
    assert report.unexpected == ["extra.weight"]
    assert report.missing == [dropped]
    assert torch.equal(target.encoder[0].weight, source.encoder[0].weight)
    assert "shape mismatch" in caplog.text
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_weights(target, tmp_path / "plain.pt", strict=True)


def test_load_weights_refuses_a_file_that_matches_nothing(tmp_path):
    torch.save({"state_dict": {"net.w": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no key of .* matches the model"):
        load_weights(small(), tmp_path / "other.ckpt")


@pytest.mark.parametrize("lookahead", [None, {"k": 3}], ids=["adamw", "adamw+lookahead"])
def test_load_optimizer_state_keeps_new_hyperparams(tmp_path, lookahead):
    source = small()
    old = trained(source, lookahead=lookahead)
    torch.save(lightning_ckpt(source, old), tmp_path / "last.ckpt")
    target = small()
    load_weights(target, tmp_path / "last.ckpt")
    new = build_optimizer(target, "adamw", lr=5e-4, weight_decay=1e-2, lookahead=lookahead)
    load_optimizer_state(new, tmp_path / "last.ckpt")
    base_old = old.optimizer if lookahead else old
    base_new = new.optimizer if lookahead else new
    for p_old, p_new in zip(source.parameters(), target.parameters(), strict=True):
        assert torch.equal(base_old.state[p_old]["exp_avg"], base_new.state[p_new]["exp_avg"])
        if lookahead:
            assert torch.equal(old.state[p_old]["slow_params"], new.state[p_new]["slow_params"])
    assert {g["lr"] for g in new.param_groups} == {5e-4}  # this run's LR, not the saved 1e-3
    assert all("initial_lr" not in g for g in new.param_groups)


def test_load_optimizer_state_that_does_not_fit_is_explained(tmp_path):
    source = small()
    torch.save(lightning_ckpt(source, trained(source)), tmp_path / "last.ckpt")
    target = small()
    freeze_encoder(target)  # fewer groups than the saved optimizer had
    new = build_optimizer(target, "adamw", lr=1e-3, weight_decay=1e-2)
    with pytest.raises(ValueError, match="does not fit this optimizer.*same frozen parts"):
        load_optimizer_state(new, tmp_path / "last.ckpt")
