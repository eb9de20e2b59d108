"""Per-class weights: a zero weight takes a class out of the loss."""

from __future__ import annotations

import pytest
import torch
from loss_cases import MODES_OF, WEIGHTED, C, batch, build

ZERO_ON_1 = [1.0, 0.0, 1.0]


def with_class_1_changed(pred: torch.Tensor, target: torch.Tensor, seed: int):
    """Scramble channel 1's logits and flip its labels (multilabel)."""
    g = torch.Generator().manual_seed(seed)
    pred2, target2 = pred.clone(), target.clone()
    pred2[:, 1] = torch.randn(pred[:, 1].shape, generator=g) * 10
    target2[:, 1] = 1.0 - target[:, 1]
    return pred2, target2


@pytest.mark.parametrize("name", [n for n in WEIGHTED if n != "ce"])
def test_multilabel_zero_weight_class_is_irrelevant(name: str) -> None:
    loss = build(name, "multilabel", class_weights=ZERO_ON_1)
    pred, target, valid = batch("multilabel", seed=30)
    pred2, target2 = with_class_1_changed(pred, target, seed=1)
    torch.testing.assert_close(loss(pred2, target2, valid), loss(pred, target, valid))
    x = pred.clone().requires_grad_(True)
    loss(x, target, valid).backward()
    assert (x.grad[:, 1] == 0).all()


def test_ce_zero_weight_class_pixels_are_irrelevant() -> None:
    """Softmax couples the logits, so for CE 'irrelevant' means: pixels labelled class 1."""
    loss = build("ce", "multiclass", class_weights=ZERO_ON_1)
    pred, target, valid = batch("multiclass", seed=31)
    at_class_1 = (target == 1).unsqueeze(1).expand_as(pred)
    pred2 = torch.where(at_class_1, torch.randn_like(pred) * 10, pred)
    torch.testing.assert_close(loss(pred2, target, valid), loss(pred, target, valid))


def test_focal_multiclass_zero_weight_channel_is_irrelevant() -> None:
    """SMP's multiclass focal is one-vs-rest sigmoid per channel: channel 1 drops out entirely."""
    loss = build("focal", "multiclass", class_weights=ZERO_ON_1)
    pred, target, valid = batch("multiclass", seed=32)
    pred2 = pred.clone()
    pred2[:, 1] = torch.randn_like(pred[:, 1]) * 10
    torch.testing.assert_close(loss(pred2, target, valid), loss(pred, target, valid))


@pytest.mark.parametrize("name", ["dice", "soft_dice", "jaccard", "tversky"])
def test_multiclass_zero_weight_term_drops_out(name: str) -> None:
    """Under softmax class 1's logit moves the other classes' probabilities, so the check is on
    terms: weights (1, 0, 1) give the mean of the class-0 term and the class-2 term."""
    pred, target, valid = batch("multiclass", seed=33)

    def term(weights: list[float]) -> torch.Tensor:
        return build(name, "multiclass", class_weights=weights)(pred, target, valid)

    expected = (term([1.0, 0.0, 0.0]) + term([0.0, 0.0, 1.0])) / 2
    torch.testing.assert_close(term(ZERO_ON_1), expected)
    assert not torch.allclose(term([1.0, 1.0, 1.0]), expected)


@pytest.mark.parametrize(
    ("name", "mode"), [(n, m) for n in WEIGHTED if n != "ce" for m in MODES_OF[n]]
)
def test_uniform_weights_equal_no_weights(name: str, mode: str) -> None:
    pred, target, valid = batch(mode, seed=34)
    plain = build(name, mode)(pred, target, valid)
    weighted = build(name, mode, class_weights=[2.0] * C)(pred, target, valid)
    torch.testing.assert_close(weighted, plain)
