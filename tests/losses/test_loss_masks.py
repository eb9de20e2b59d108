"""Ignored / invalid pixels: nothing there changes the loss, and an empty batch is finite."""

from __future__ import annotations

import pytest
import torch
from loss_cases import IGNORE, MODES_OF, REG, C, batch, build, mask_cases

REGRESSION_LOSSES = [name for name, modes in MODES_OF.items() if modes == REG]


def dropped_elements(mode: str, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    """Bool of pred's shape: True where neither prediction nor target may matter."""
    if valid.dim() == pred.dim() - 1:
        valid = valid.unsqueeze(1)
    dropped = ~valid.expand_as(pred)
    ignored = target == IGNORE
    if mode == "multiclass":
        ignored = ignored.unsqueeze(1)
    return dropped | ignored.expand_as(pred)


def scramble(x: torch.Tensor, where: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g) * 10
    return torch.where(where, noise.to(x.dtype), x)


def multilabel_variants(target: torch.Tensor, valid: torch.Tensor):
    """Per-pixel valid; per-element valid; ignore index written in the target itself."""
    per_element = valid.unsqueeze(1).repeat(1, C, 1, 1)
    per_element[:, 1, 2] = False
    with_ignore = target.clone()
    with_ignore[:, 2, 3] = IGNORE
    return [(target, valid), (target, per_element), (with_ignore, valid)]


def cases_for(mode: str, seed: int):
    pred, target, valid = batch(mode, seed=seed)
    if mode == "multiclass":
        return pred, [(target, valid)]
    return pred, multilabel_variants(target, valid)


@pytest.mark.parametrize(("name", "mode", "kwargs"), mask_cases())
def test_predictions_at_dropped_pixels_do_not_matter(name: str, mode: str, kwargs: dict) -> None:
    loss = build(name, mode, **kwargs)
    pred, variants = cases_for(mode, seed=20)
    for target, valid in variants:
        dropped = dropped_elements(mode, pred, target, valid)
        assert dropped.any() and (~dropped).any()
        base = loss(pred, target, valid)
        torch.testing.assert_close(loss(scramble(pred, dropped, 1), target, valid), base)
        x = pred.clone().requires_grad_(True)
        loss(x, target, valid).backward()
        assert (x.grad[dropped] == 0).all()
        assert (x.grad[~dropped] != 0).any()


@pytest.mark.parametrize(("name", "mode", "kwargs"), mask_cases())
def test_targets_at_invalid_pixels_do_not_matter(name: str, mode: str, kwargs: dict) -> None:
    """Labels under an invalid pixel are often junk (or a NaN placeholder in soft masks)."""
    loss = build(name, mode, **kwargs)
    pred, target, valid = batch(mode, seed=21)
    if mode == "multiclass":
        junk = torch.where(valid, target, torch.randint_like(target, 0, C))
    else:
        junk = torch.where(valid.unsqueeze(1), target, 1.0 - target)
    torch.testing.assert_close(loss(pred, junk, valid), loss(pred, target, valid))


@pytest.mark.parametrize(("name", "mode", "kwargs"), mask_cases())
@pytest.mark.parametrize("how", ["valid", "ignore_index"])
def test_all_dropped_batch_is_zero_and_finite(name: str, mode: str, kwargs: dict, how: str) -> None:
    loss = build(name, mode, **kwargs)
    pred, target, valid = batch(mode, seed=22)
    if how == "valid":
        valid = torch.zeros_like(valid)
    else:
        target, valid = torch.full_like(target, IGNORE), None
    x = pred.clone().requires_grad_(True)
    value = loss(x, target, valid)
    assert value.dim() == 0 and value.requires_grad
    assert torch.isfinite(value) and value.item() == 0.0
    value.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_lovasz_per_image_skips_an_all_ignored_image(mode: str) -> None:
    """SMP's own per_image returns an empty tensor here (multiclass); ours averages the rest."""
    pred, target, valid = batch(mode, seed=23)
    valid[0] = False
    per_image = build("lovasz", mode, per_image=True)
    whole = build("lovasz", mode)
    value = per_image(pred, target, valid)
    torch.testing.assert_close(value, whole(pred[1:], target[1:], valid[1:]))


@pytest.mark.parametrize("name", REGRESSION_LOSSES)
@pytest.mark.parametrize("vector", [False, True])
def test_regression_invalid_elements_do_not_matter(name: str, vector: bool) -> None:
    loss = build(name, "regression")
    pred, target, valid = batch("regression", seed=24, vector=vector)
    base = loss(pred, target, valid)
    dropped = ~valid.expand_as(pred)
    # Prediction noise and NaN placeholders in the target at invalid elements change nothing.
    nan_target = target.masked_fill(dropped, float("nan"))
    torch.testing.assert_close(loss(scramble(pred, dropped, 2), nan_target, valid), base)
    x = pred.clone().requires_grad_(True)
    loss(x, nan_target, valid).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[dropped] == 0).all()


@pytest.mark.parametrize("name", REGRESSION_LOSSES)
def test_regression_all_invalid_is_zero_with_grad(name: str) -> None:
    pred, target, valid = batch("regression", seed=25)
    x = pred.clone().requires_grad_(True)
    value = build(name, "regression")(x, target, torch.zeros_like(valid))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_valid_broadcast_forms_agree_for_regression() -> None:
    """B×1×H×W, B×H×W and a full B×K×H×W mask mean the same thing."""
    pred, target, valid = batch("regression", seed=26)
    loss = build("mse", "regression")
    expected = loss(pred, target, valid)
    torch.testing.assert_close(loss(pred, target, valid[:, 0]), expected)
    torch.testing.assert_close(loss(pred, target, valid.expand_as(pred)), expected)
