"""augmentation.device: each op by hand, targets aligned, per-sample draws, seeding, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from podium.config import ConfigError, load_config
from podium.engine.device_augment import (
    DEVICE_AUGMENTATIONS,
    DeviceAugment,
    build_device_ops,
)


def _augment(specs, seed: int = 0) -> DeviceAugment:
    return DeviceAugment(build_device_ops(specs), seed)


def _image_2x3(batch: int = 1) -> torch.Tensor:
    """B×3×2×3 uint8; channel c holds 10·c + [[0, 1, 2], [3, 4, 5]]."""
    base = torch.arange(6, dtype=torch.uint8).view(1, 2, 3)
    return torch.stack([base + 10 * c for c in range(3)], dim=1).repeat(batch, 1, 1, 1)


def _square_batch(batch: int, side: int = 3) -> tuple[torch.Tensor, dict]:
    """Image whose every channel equals its mask (distinct values), plus a valid mask."""
    mask = torch.arange(side * side, dtype=torch.uint8).view(1, side, side).repeat(batch, 1, 1)
    image = mask[:, None].repeat(1, 3, 1, 1)
    multilabel = torch.stack([mask, mask + 100], dim=1)  # B×2×H×W
    return image, {"mask": mask, "valid_mask": mask.clone(), "labels": multilabel}


def test_hflip_of_a_known_image_and_mask():
    image = _image_2x3()
    mask = torch.tensor([[[0, 1, 2], [3, 4, 5]]], dtype=torch.uint8)
    out, targets = _augment([("hflip", {"p": 1.0})])(image, {"mask": mask}, (0, 0))
    assert out.tolist()[0][0] == [[2, 1, 0], [5, 4, 3]]
    assert out.tolist()[0][2] == [[22, 21, 20], [25, 24, 23]]
    assert targets["mask"].tolist() == [[[2, 1, 0], [5, 4, 3]]]
    assert out.dtype == torch.uint8 and targets["mask"].dtype == torch.uint8


def test_vflip_of_a_known_image_and_mask():
    mask = torch.tensor([[[0, 1, 2], [3, 4, 5]]], dtype=torch.uint8)
    out, targets = _augment([("vflip", {"p": 1.0})])(_image_2x3(), {"mask": mask}, (0, 0))
    assert out.tolist()[0][1] == [[13, 14, 15], [10, 11, 12]]
    assert targets["mask"].tolist() == [[[3, 4, 5], [0, 1, 2]]]


def test_transpose_of_a_known_square():
    image, targets = _square_batch(1)
    out, targets = _augment([("transpose", {"p": 1.0})])(image, targets, (0, 0))
    expected = [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert out[0, 0].tolist() == expected and targets["mask"][0].tolist() == expected


@pytest.mark.parametrize("name", ["rot90", "d4"])
def test_rotations_keep_image_and_every_target_aligned(name):
    image, targets = _square_batch(64)
    original = targets["mask"][0].numpy()
    out, got = _augment([(name, {"p": 1.0})])(image, targets, (0, 0))
    group = [np.rot90(original, k) for k in range(4)]
    if name == "d4":
        group += [np.rot90(original[:, ::-1], k) for k in range(4)]
    seen = set()
    for i in range(64):
        mask = got["mask"][i].numpy()
        for channel in range(3):  # pixel for pixel: image value == mask value
            assert np.array_equal(out[i, channel].numpy(), mask)
        assert np.array_equal(got["valid_mask"][i].numpy(), mask)
        assert np.array_equal(got["labels"][i, 0].numpy(), mask)
        assert np.array_equal(got["labels"][i, 1].numpy(), mask + 100)
        seen.add(next(k for k, g in enumerate(group) if np.array_equal(mask, g)))
    assert seen == set(range(len(group)))  # every element is drawn, identity included


def test_rot90_on_a_non_square_batch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rot90 turns H×W into W×H.*2×3"):
        _augment([("rot90", {"p": 1.0})])(_image_2x3(), {}, (0, 0))


def test_brightness_contrast_by_hand():
    image = torch.tensor([0, 100, 200], dtype=torch.uint8).view(1, 1, 1, 3)
    specs = [
        (
            "brightness_contrast",
            {"brightness_limit": [0.1, 0.1], "contrast_limit": [0.5, 0.5], "p": 1.0},
        )
    ]
    out, _ = _augment(specs)(image, {}, (0, 0))
    # x·1.5 + 0.1·255, clamped to 0..255, float before normalization.
    assert out.dtype == torch.float32
    assert out.flatten().tolist() == pytest.approx([25.5, 175.5, 255.0])
    by_mean = [
        (
            "brightness_contrast",
            {
                "brightness_limit": [0.5, 0.5],
                "contrast_limit": 0,
                "brightness_by_max": False,
                "p": 1.0,
            },
        )
    ]
    out, _ = _augment(by_mean)(image, {}, (0, 0))
    assert out.flatten().tolist() == pytest.approx([50.0, 150.0, 250.0])  # + 0.5·mean(x)


def test_gaussian_noise_statistics_and_image_only():
    image = torch.full((8, 3, 32, 32), 128, dtype=torch.uint8)
    mask = torch.ones(8, 32, 32, dtype=torch.uint8)
    specs = [
        (
            "gaussian_noise",
            {"std_range": [0.1, 0.1], "mean_range": [0.2, 0.2], "per_channel": False, "p": 1.0},
        )
    ]
    out, targets = _augment(specs)(image, {"mask": mask}, (0, 0))
    noise = out - 128.0
    assert noise.mean().item() == pytest.approx(0.2 * 255, abs=1.0)
    assert noise.std().item() == pytest.approx(0.1 * 255, rel=0.05)
    assert torch.equal(out[:, 0], out[:, 2])  # per_channel False: one map for all channels
    assert torch.equal(targets["mask"], mask)
    per_channel = [("gaussian_noise", {"p": 1.0})]
    out, _ = _augment(per_channel)(image, {}, (0, 0))
    assert not torch.equal(out[:, 0], out[:, 1]) and out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("name", DEVICE_AUGMENTATIONS.names())
def test_p_zero_is_the_identity(name):
    image, targets = _square_batch(16)
    out, got = _augment([(name, {"p": 0.0})])(image, targets, (0, 0))
    assert out.dtype == torch.uint8 and torch.equal(out, image)
    for key, value in targets.items():
        assert torch.equal(got[key], value)


@pytest.mark.parametrize("name", ["hflip", "brightness_contrast", "gaussian_noise"])
def test_half_probability_changes_some_samples_and_not_others(name):
    image = torch.randint(1, 255, (32, 3, 8, 8), dtype=torch.uint8)
    out, _ = _augment([(name, {"p": 0.5})])(image, {}, (0, 0))
    changed = [not torch.equal(out[i].float(), image[i].float()) for i in range(32)]
    assert 4 <= sum(changed) <= 28
    if name == "hflip":  # a changed sample is exactly its own mirror image
        for i in range(32):
            assert torch.equal(out[i], image[i].flip(-1) if changed[i] else image[i])


def test_same_seed_and_step_repeat_other_steps_differ():
    specs = [("d4", {}), ("brightness_contrast", {}), ("gaussian_noise", {})]
    image, targets = _square_batch(16, side=8)
    first = _augment(specs, seed=5)(image, targets, (1, 2, 0))
    again = _augment(specs, seed=5)(image, targets, (1, 2, 0))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["mask"], again[1]["mask"])
    other_step = _augment(specs, seed=5)(image, targets, (1, 3, 0))
    other_seed = _augment(specs, seed=6)(image, targets, (1, 2, 0))
    assert not torch.equal(first[0], other_step[0]) and not torch.equal(first[0], other_seed[0])


def test_inputs_are_not_modified():
    image, targets = _square_batch(8)
    kept = image.clone(), {k: v.clone() for k, v in targets.items()}
    specs = [("d4", {}), ("gaussian_noise", {"p": 1.0}), ("hflip", {"p": 1.0})]
    _augment(specs)(image, targets, (0, 0))
    assert torch.equal(image, kept[0])
    assert all(torch.equal(targets[k], kept[1][k]) for k in targets)


# --- config ------------------------------------------------------------------------------------


def _config(tiny_config, device, train=None):
    tiny_config["augmentation"] = {"train": train, "device": device}
    return load_config(raw=tiny_config)


def test_config_rejects_unknown_names_and_arguments(tiny_config):
    with pytest.raises(ConfigError, match=r"augmentation\.device.*'hflp'.*Did you mean 'hflip'"):
        _config(tiny_config, ["hflp"])
    with pytest.raises(ConfigError, match=r"'rot90' has no argument 'prob'"):
        _config(tiny_config, [{"name": "rot90", "prob": 1}])
    with pytest.raises(ConfigError, match=r"p must be in \[0, 1\]"):
        _config(tiny_config, [{"name": "hflip", "p": 1.5}])


def test_config_rejects_rot90_on_non_square_crops(tiny_config):
    crop = [{"__class_fullname__": "RandomCrop", "height": 32, "width": 48, "p": 1.0}]
    with pytest.raises(ConfigError, match=r"rot90 can turn H×W into W×H.*may crop to 32×48"):
        _config(tiny_config, [{"name": "rot90"}], crop)
    # Flips keep the shape; a square crop is fine for rotations.
    assert _config(tiny_config, ["hflip", "vflip"], crop).augmentation.device[1].name == "vflip"
    square = [{"__class_fullname__": "RandomCrop", "height": 32, "width": 32, "p": 1.0}]
    config = _config(tiny_config, ["d4", {"name": "gaussian_noise", "p": 0.3}], square)
    assert config.augmentation.device[1].kwargs == {"p": 0.3}


def _crop(height: int, width: int, p: float = 1.0) -> dict:
    return {"__class_fullname__": "RandomCrop", "height": height, "width": width, "p": p}


def test_config_rejects_rot90_when_any_branch_may_end_non_square(tiny_config):
    one_of = {"__class_fullname__": "OneOf", "transforms": [_crop(32, 48), _crop(32, 32)], "p": 1}
    with pytest.raises(ConfigError, match=r"may crop to 32×48"):
        _config(tiny_config, ["d4"], [one_of])
    # A square crop that may not run leaves the earlier oblong crop as a possible output.
    with pytest.raises(ConfigError, match=r"may crop to 40×48"):
        _config(tiny_config, ["transpose"], [_crop(40, 48), _crop(32, 32, p=0.5)])
    # One that always runs replaces it.
    assert _config(tiny_config, ["rot90"], [_crop(40, 48), _crop(32, 32)]).augmentation.device
