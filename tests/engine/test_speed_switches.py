"""Speed switches reach training: augmentation.device in training_step, compile_mode, RAM cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from podium.build import build_module
from podium.config import load_config
from podium.engine.history import read_history
from podium.workflows.fit import train


def _captured_step(module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Run training_step; return the images the forward got and the batch the loss got."""
    seen: dict = {}
    forward = module.forward

    def spy_forward(inputs):
        seen["images"] = inputs["image"].clone()
        return forward(inputs)

    def spy_losses(outputs, batch):
        seen["batch"] = batch
        return outputs["mask"].sum() * 0, {}

    module.forward, module._losses = spy_forward, spy_losses
    with pytest.warns(UserWarning, match="self.log"):  # no Trainer attached
        module.training_step(batch, 0)
    return seen["images"], seen["batch"]


def _batch() -> dict:
    mask = torch.randint(0, 3, (2, 64, 64), dtype=torch.uint8)
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    return {"image": image, "mask": mask, "valid_mask": mask.clone(), "name": ["a", "b"]}


def test_training_step_flips_image_and_targets_together(tiny_config):
    config = load_config(raw=tiny_config, overrides=["augmentation.device=[{name: hflip, p: 1}]"])
    batch = _batch()
    images, seen = _captured_step(build_module(config), dict(batch))
    assert torch.equal(images, batch["image"].flip(-1))
    assert torch.equal(seen["mask"], batch["mask"].flip(-1).long())  # then cast for the loss
    assert torch.equal(seen["valid_mask"], batch["mask"].flip(-1))
    assert seen["name"] == ["a", "b"]


def test_training_step_without_device_ops_leaves_the_batch(tiny_config):
    batch = _batch()
    images, seen = _captured_step(build_module(load_config(raw=tiny_config)), dict(batch))
    assert torch.equal(images, batch["image"]) and torch.equal(seen["mask"], batch["mask"].long())


def test_photometric_ops_reach_the_forward_in_0_255(tiny_config):
    ops = "augmentation.device=[{name: brightness_contrast, brightness_limit: [0.2, 0.2], contrast_limit: 0, p: 1}]"  # noqa: E501
    batch = _batch()
    images, _ = _captured_step(build_module(load_config(raw=tiny_config, overrides=[ops])), batch)
    expected = (batch["image"].float() + 0.2 * 255).clamp(0, 255)
    assert images.dtype == torch.float32 and torch.allclose(images, expected)


@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune"])
def test_compile_mode_reaches_torch_compile(tiny_config, monkeypatch, mode):
    calls, marks = [], []

    def recording_compile(model, **kwargs):
        calls.append(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    overrides = ["trainer.compile=true", f"trainer.compile_mode={mode}"]
    module = build_module(load_config(raw=tiny_config, overrides=overrides))
    module.setup("fit")
    assert calls == [{"mode": mode}]
    module(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    module(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    # CUDA graphs reuse output memory: each forward starts a new graph step.
    assert len(marks) == (2 if mode == "reduce-overhead" else 0)


def test_compile_mode_rejects_unknown_modes(tiny_config):
    from podium.config import ConfigError

    with pytest.raises(ConfigError, match=r"trainer\.compile_mode"):
        load_config(raw=tiny_config, overrides=["trainer.compile_mode=fastest"])


def test_train_with_ram_cache_and_device_augmentation(tiny_config, monkeypatch):
    import podium.data.dataset
    from podium.engine.device_augment import DeviceAugment

    def no_disk_reads(*args, **kwargs):
        raise AssertionError("a dataset read a file although data.cache is ram")

    monkeypatch.setattr(podium.data.dataset, "read_image", no_disk_reads)
    steps = []
    augment = DeviceAugment.__call__

    def counted(self, images, targets, step):
        steps.append(tuple(step))
        return augment(self, images, targets, step)

    monkeypatch.setattr(DeviceAugment, "__call__", counted)
    tiny_config["data"]["cache"] = "ram"
    tiny_config["augmentation"]["device"] = [
        "d4",
        {"name": "brightness_contrast", "p": 0.5},
        {"name": "gaussian_noise", "std_range": [0.02, 0.05], "p": 0.5},
    ]
    config = load_config(raw=tiny_config, overrides=["trainer.max_epochs=2"])
    run_dir = train(config)
    history = read_history(run_dir / "metrics.csv")
    assert [row["epoch"] for row in history] == [0, 1]
    assert all(np.isfinite(row["train/loss"]) and np.isfinite(row["val/loss"]) for row in history)
    assert load_config(run_dir / "config.yaml").augmentation.device[0].name == "d4"
    assert (run_dir / "checkpoints/last.ckpt").is_file()
    # 12 images in batches of 4, two epochs: (epoch, batch, rank) seeds every step.
    assert steps == [(epoch, batch, 0) for epoch in range(2) for batch in range(3)]
