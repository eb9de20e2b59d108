"""Ensembles: probability averaging across modules and weight averaging across checkpoints."""

from __future__ import annotations

import pytest
import torch
from inference_helpers import random_images, tiny_module, tiny_raw

from podium.build.checkpoint import load_averaged_module
from podium.inference.ensemble import EnsemblePredictor, average_checkpoints
from podium.inference.forward import predict_probabilities
from podium.inference.tiles import sliding_window_predict


def _save(module, path, classes: int = 3):
    torch.save({"state_dict": module.state_dict(), "podium_config": tiny_raw(classes)}, path)
    return path


@pytest.fixture(scope="module")
def members():
    return tiny_module(seed=1), tiny_module(seed=2)


@pytest.fixture(scope="module")
def images():
    return random_images(2, 32, 64)


def test_ensemble_of_one_equals_the_module(members, images):
    out = EnsemblePredictor([members[0]])(images)
    torch.testing.assert_close(out["mask"], predict_probabilities(members[0], images)["mask"])


def test_ensemble_of_two_identical_modules_equals_one(members, images):
    out = EnsemblePredictor([members[0], members[0]], weights=[2.0, 5.0])(images)
    single = predict_probabilities(members[0], images)["mask"]
    torch.testing.assert_close(out["mask"], single, atol=1e-6, rtol=0)


def test_weighted_ensemble_is_the_weighted_mean(members, images):
    a, b = (predict_probabilities(m, images)["mask"] for m in members)
    out = EnsemblePredictor(list(members), weights=[1.0, 3.0])(images)["mask"]
    torch.testing.assert_close(out, 0.25 * a + 0.75 * b, atol=1e-6, rtol=0)


def test_ensemble_is_a_predict_fn_for_tiles(members):
    image = random_images(1, 40, 40)[0]
    out = sliding_window_predict(EnsemblePredictor(list(members)), image, 32, overlap=0.5)
    assert out["mask"].shape == (3, 40, 40)


def test_ensemble_members_must_share_heads(members):
    other = tiny_module(classes=4)
    with pytest.raises(ValueError, match=r"member 1, head 'mask'.*\('mask', 4, 'softmax'\)"):
        EnsemblePredictor([members[0], other])
    with pytest.raises(ValueError, match="2 modules but 1 weights"):
        EnsemblePredictor(list(members), weights=[1.0])
    with pytest.raises(ValueError, match="at least one"):
        EnsemblePredictor([])


def test_averaging_identical_checkpoints_returns_the_same_weights(members, tmp_path):
    path = _save(members[0], tmp_path / "a.ckpt")
    averaged = average_checkpoints([path, path, path])
    for key, value in members[0].state_dict().items():
        assert averaged[key].dtype == value.dtype
        torch.testing.assert_close(averaged[key], value, atol=1e-7, rtol=0, msg=key)


def test_averaging_two_checkpoints_returns_the_mean(members, tmp_path):
    first, second = (m.state_dict() for m in members)
    second = {k: v.clone() for k, v in second.items()}
    counters = [k for k, v in second.items() if not v.is_floating_point()]
    assert counters  # BatchNorm num_batches_tracked
    for key in counters:
        second[key] += 7
    torch.save({"state_dict": second, "podium_config": tiny_raw()}, tmp_path / "b.ckpt")
    averaged = average_checkpoints([_save(members[0], tmp_path / "a.ckpt"), tmp_path / "b.ckpt"])
    for key, value in first.items():
        if key in counters:
            assert torch.equal(averaged[key], value), key  # integers kept from the first
        else:
            torch.testing.assert_close(averaged[key], (value + second[key]) / 2, msg=key)


def test_load_averaged_module_carries_the_averaged_weights(members, tmp_path, images):
    paths = [_save(m, tmp_path / f"{i}.ckpt") for i, m in enumerate(members)]
    config, module = load_averaged_module(paths, device="cpu")
    assert not module.training and config.model.arch == "Unet"
    expected = average_checkpoints(paths)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)
    assert predict_probabilities(module, images)["mask"].shape == (2, 3, 32, 64)


def test_checkpoints_with_different_shapes_are_refused(members, tmp_path):
    a = _save(members[0], tmp_path / "a.ckpt")
    b = _save(tiny_module(classes=4), tmp_path / "b.ckpt", classes=4)
    with pytest.raises(ValueError, match=r"b\.ckpt, key 'model\.heads\.mask\.conv\.weight'"):
        average_checkpoints([a, b])
    state = members[0].state_dict()
    state.pop(next(iter(state)))
    torch.save({"state_dict": state}, tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="different keys"):
        average_checkpoints([a, tmp_path / "c.ckpt"])
    with pytest.raises(FileNotFoundError):
        average_checkpoints([tmp_path / "missing.ckpt"])
