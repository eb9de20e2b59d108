"""Every registered loss: builds for its modes, refuses the others, returns a usable scalar."""

from __future__ import annotations

import pytest
import torch
from loss_cases import MODES_OF, WEIGHTED, C, batch, build, ctx_for, good_and_bad

from podium.losses import LOSSES, CombinedLoss, LossContext, build_loss

ALL_MODES = ("multiclass", "multilabel", "regression")
SUPPORTED = [(name, mode) for name in LOSSES.names() for mode in MODES_OF.get(name, ())]
UNSUPPORTED = [
    (name, mode) for name in LOSSES.names() for mode in ALL_MODES if mode not in MODES_OF[name]
]


def test_table_is_complete() -> None:
    assert set(LOSSES.names()) == set(MODES_OF)


@pytest.mark.parametrize(("name", "mode"), SUPPORTED)
@pytest.mark.parametrize("masked", [False, True])
def test_finite_scalar_with_gradient(name: str, mode: str, masked: bool) -> None:
    pred, target, valid = batch(mode)
    if mode == "multiclass" and not masked:
        target = target.clamp(0, C - 1)  # no ignored pixel at all
    pred.requires_grad_(True)
    loss = build(name, mode)(pred, target, valid if masked else None)
    assert loss.dim() == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "mode"), SUPPORTED)
def test_good_prediction_beats_bad(name: str, mode: str) -> None:
    _, target, valid = batch(mode)
    good, bad = good_and_bad(mode, target)
    loss = build(name, mode)
    assert loss(good, target, valid) < loss(bad, target, valid)


@pytest.mark.parametrize(("name", "mode"), UNSUPPORTED)
def test_wrong_head_is_refused_with_a_hint(name: str, mode: str) -> None:
    with pytest.raises(ValueError, match=rf"'{name}'.*use '"):
        build(name, mode)


def test_ce_and_bce_point_at_each_other() -> None:
    with pytest.raises(ValueError, match="use 'bce'"):
        build("ce", "multilabel")
    with pytest.raises(ValueError, match="use 'ce'"):
        build("bce", "multiclass")


@pytest.mark.parametrize("name", WEIGHTED)
def test_class_weights_length_must_match(name: str) -> None:
    mode = MODES_OF[name][0]
    with pytest.raises(ValueError, match=rf"'{name}'.*class_weights has 2 values.*{C} classes"):
        build(name, mode, class_weights=[1.0, 2.0])
    build(name, mode, class_weights=[1.0] * C)


def test_bce_pos_weight_scalar_or_per_class() -> None:
    build("bce", "multilabel", pos_weight=3.0)
    build("bce", "multilabel", pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="pos_weight has 2 values"):
        build("bce", "multilabel", pos_weight=[1.0, 2.0])


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="delta"):
        build("huber", "regression", delta=0.0)
    with pytest.raises(ValueError, match="smooth_factor"):
        build("bce", "multilabel", smooth_factor=0.7)


def test_yaml_style_terms_combine() -> None:
    """The README example: bce + dice on a multilabel head."""
    terms = [("bce", 0.6, {"smooth_factor": 1e-6}), ("dice", 0.4, {"smooth": 1.0})]
    combined = build_loss(terms, ctx_for("multilabel", ignore_index=None))
    assert isinstance(combined, CombinedLoss)
    pred, target, valid = batch("multilabel")
    total, parts = combined(pred, target, valid)
    torch.testing.assert_close(total, 0.6 * parts["bce"] + 0.4 * parts["dice"])


def test_single_logit_binary_head() -> None:
    """pred B×1×H×W with target B×H×W is the plain binary case."""
    ctx = LossContext("multilabel", num_classes=1)
    pred = torch.randn(2, 1, 4, 4)
    target = (torch.rand(2, 4, 4) > 0.5).float()
    for name in ("bce", "dice", "soft_dice", "focal", "jaccard", "lovasz", "tversky"):
        loss = LOSSES.get(name)(ctx)
        torch.testing.assert_close(loss(pred, target), loss(pred, target.unsqueeze(1)))
