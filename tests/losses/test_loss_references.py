"""Each loss against an independent reference: pytorch-toolbelt, SMP, torch, or numbers by hand."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from loss_cases import IGNORE, C, batch, build

from podium.losses import LOSSES, LossContext
from podium.losses.regression import cosine_loss, huber_loss, l1_loss, mse_loss, smooth_l1_loss
from podium.losses.soft_dice import soft_dice_loss

close = torch.testing.assert_close


# --- soft_dice --------------------------------------------------------------------------------


def test_soft_dice_tiny_case_by_hand() -> None:
    """Two classes, three pixels, one image; computed on paper.

    probs (class 0, class 1) per pixel: (0.8, 0.2), (0.4, 0.6), (0.1, 0.9); labels 0, 1, 1.
    class 0: I = 0.8, |P| + |T| = 1.3 + 1 = 2.3, dice = 1.6 / 2.3
    class 1: I = 0.6 + 0.9 = 1.5, |P| + |T| = 1.7 + 2 = 3.7, dice = 3.0 / 3.7
    weights (1, 3): loss = (1 (1 - 1.6/2.3) + 3 (1 - 3.0/3.7)) / 4
    With the middle pixel invalid: class 0 I = 0.8, 0.9 + 1 -> 1.6/1.9; class 1 I = 0.9,
    1.1 + 1 -> 1.8/2.1.
    """
    probs = torch.tensor([[0.8, 0.4, 0.1], [0.2, 0.6, 0.9]]).reshape(1, 2, 3)
    one_hot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]).reshape(1, 2, 3)
    weights = torch.tensor([1.0, 3.0])
    expected = (1 * (1 - 1.6 / 2.3) + 3 * (1 - 3.0 / 3.7)) / 4
    close(soft_dice_loss(probs, one_hot, weights), torch.tensor(expected))
    valid = torch.tensor([[True, False, True]])
    expected_masked = ((1 - 1.6 / 1.9) + (1 - 1.8 / 2.1)) / 2
    close(soft_dice_loss(probs, one_hot, valid=valid), torch.tensor(expected_masked))
    # smooth 1, log loss: -log((2I + 1) / (|P| + |T| + 1)) per class.
    expected_log = -(math.log(2.6 / 3.3) + math.log(4.0 / 4.7)) / 2
    close(soft_dice_loss(probs, one_hot, smooth=1.0, log_loss=True), torch.tensor(expected_log))


def test_soft_dice_absent_class_term_is_zero_but_counts() -> None:
    """toolbelt: a class with no target pixel contributes 0 and still divides the mean."""
    probs = torch.tensor([[0.8, 0.4], [0.2, 0.6]]).reshape(1, 2, 2)
    one_hot = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).reshape(1, 2, 2)
    expected = (1 - 2 * 1.2 / 3.2) / 2
    close(soft_dice_loss(probs, one_hot), torch.tensor(expected))


@pytest.fixture(scope="module")
def toolbelt_dice():
    """pytorch-toolbelt's DiceLoss, installed for tests only (pip install --no-deps)."""
    module = pytest.importorskip("pytorch_toolbelt.losses.dice")
    return module.DiceLoss


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("kwargs", [{}, {"smooth": 1.0}, {"log_loss": True, "eps": 1e-6}])
def test_soft_dice_matches_toolbelt(toolbelt_dice, mode: str, kwargs: dict) -> None:
    pred, target, _ = batch(mode, seed=3)
    ours = build("soft_dice", mode, **kwargs)
    ref = toolbelt_dice(mode, ignore_index=IGNORE, **kwargs)
    close(ours(pred, target), ref(pred, target))


def test_soft_dice_valid_matches_toolbelt_ignore(toolbelt_dice) -> None:
    pred, target, valid = batch("multiclass", seed=4)
    ref = toolbelt_dice("multiclass", ignore_index=IGNORE)(pred, target.masked_fill(~valid, IGNORE))
    close(build("soft_dice", "multiclass")(pred, target, valid), ref)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_soft_dice_class_weights_match_toolbelt_per_class(toolbelt_dice, mode: str) -> None:
    """toolbelt has no weights, but `classes=[c]` gives the class-c term alone.

    (classes goes in as a tensor: toolbelt 0.8's to_tensor garbles a Python list under numpy 2.)
    """
    pred, target, _ = batch(mode, seed=5)
    weights = [0.5, 2.0, 1.0]
    terms = [
        toolbelt_dice(mode, classes=torch.tensor([c]), ignore_index=IGNORE)(pred, target)
        for c in range(C)
    ]
    expected = sum(w * t for w, t in zip(weights, terms, strict=True)) / sum(weights)
    close(build("soft_dice", mode, class_weights=weights)(pred, target), expected)


# --- SMP wrappers: same value as the SMP class they wrap ----------------------------------------


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize(
    ("name", "smp_cls", "kwargs"),
    [
        ("dice", smp.losses.DiceLoss, {"smooth": 1.0, "class_weights": [1.0, 2.0, 0.5]}),
        ("jaccard", smp.losses.JaccardLoss, {"log_loss": True}),
        ("tversky", smp.losses.TverskyLoss, {"alpha": 0.3, "beta": 0.7, "gamma": 1.5}),
        ("lovasz", smp.losses.LovaszLoss, {}),
        ("lovasz", smp.losses.LovaszLoss, {"per_image": True}),
    ],
)
def test_smp_wrappers_match_smp(name: str, smp_cls, kwargs: dict, mode: str) -> None:
    """`valid` gives the same value as writing the ignore index into the target for SMP."""
    pred, target, valid = batch(mode, seed=6)
    ref = smp_cls(mode, ignore_index=IGNORE, **kwargs)
    if mode == "multiclass":
        smp_target = target.masked_fill(~valid, IGNORE)
    else:
        smp_target = target.masked_fill(~valid.unsqueeze(1), IGNORE)
    close(build(name, mode, **kwargs)(pred, target, valid), ref(pred, smp_target))


def test_focal_matches_smp_multiclass_with_ignore() -> None:
    pred, target, valid = batch("multiclass", seed=7)
    kwargs = {"alpha": 0.25, "gamma": 2.0, "class_weights": [1.0, 0.5, 2.0]}
    ref = smp.losses.FocalLoss("multiclass", ignore_index=IGNORE, **kwargs)
    expected = ref(pred, target.masked_fill(~valid, IGNORE))
    close(build("focal", "multiclass", **kwargs)(pred, target, valid), expected)


def test_focal_matches_smp_multilabel() -> None:
    """SMP's class cannot ignore in multilabel mode (IndexError), so compare on all-valid."""
    pred, target, _ = batch("multilabel", seed=8)
    ref = smp.losses.FocalLoss("multilabel", gamma=1.5, class_weights=[1.0, 2.0, 3.0])
    ours = build("focal", "multilabel", gamma=1.5, class_weights=[1.0, 2.0, 3.0])
    close(ours(pred, target), ref(pred, target))


def test_focal_multilabel_masked_equals_focal_on_kept_pixels() -> None:
    """Masking = running on the kept columns only (each class averaged over its kept pixels)."""
    pred, target, valid = batch("multilabel", seed=9)
    ref = smp.losses.FocalLoss("multilabel")
    keep_cols = valid[0, 0]  # column 0 invalid in every row and image
    expected = ref(pred[..., keep_cols], target[..., keep_cols])
    close(build("focal", "multilabel")(pred, target, valid), expected)


# --- cross-entropy / BCE ----------------------------------------------------------------------


def test_ce_matches_torch() -> None:
    pred, target, valid = batch("multiclass", seed=10)
    weights = torch.tensor([1.0, 0.5, 2.0])
    expected = F.cross_entropy(
        pred,
        target.masked_fill(~valid, IGNORE),
        weight=weights,
        ignore_index=IGNORE,
        label_smoothing=0.1,
    )
    loss = build("ce", "multiclass", class_weights=weights.tolist(), label_smoothing=0.1)
    close(loss(pred, target, valid), expected)


def test_bce_smoothing_by_hand() -> None:
    """z = 2: log σ(z) = -log(1 + e^-2) = -0.126928, log(1 - σ(z)) = log σ(z) - 2 = -2.126928.

    smooth_factor 0.1 (SMP's convention): target 1 -> 0.9, target 0 -> 0.1.
    t=1: 0.9 * 0.126928 + 0.1 * 2.126928 = 0.326928
    t=0: 0.1 * 0.126928 + 0.9 * 2.126928 = 1.926928
    pos_weight 3 scales the positive part (-s log σ): t=1: 2.7 * 0.126928 + 0.212693 = 0.555398,
    t=0: 0.3 * 0.126928 + 1.914235 = 1.952314.
    (The other convention, t (1 - s) + s / 2, would give 0.226928 and 2.026928.)
    """
    ctx = LossContext("multilabel", num_classes=1)
    pred = torch.full((1, 1, 1, 1), 2.0)
    one, zero = torch.ones_like(pred), torch.zeros_like(pred)
    smoothed = LOSSES.get("bce")(ctx, smooth_factor=0.1)
    close(smoothed(pred, one), torch.tensor(0.326928), atol=1e-6, rtol=0)
    close(smoothed(pred, zero), torch.tensor(1.926928), atol=1e-6, rtol=0)
    weighted = LOSSES.get("bce")(ctx, smooth_factor=0.1, pos_weight=3.0)
    close(weighted(pred, one), torch.tensor(0.555398), atol=1e-6, rtol=0)
    close(weighted(pred, zero), torch.tensor(1.952314), atol=1e-6, rtol=0)
    # The user's seed value 1e-6 barely moves a confident prediction.
    tiny = LOSSES.get("bce")(ctx, smooth_factor=1e-6)
    close(tiny(pred, one), F.binary_cross_entropy_with_logits(pred, one), atol=1e-5, rtol=0)


def test_bce_matches_smp_soft_bce_on_all_valid() -> None:
    pred, target, _ = batch("multilabel", seed=11)
    pos_weight = torch.tensor([1.0, 2.0, 0.5])
    ref = smp.losses.SoftBCEWithLogitsLoss(
        smooth_factor=0.05, pos_weight=pos_weight.reshape(C, 1, 1), ignore_index=None
    )
    ours = build("bce", "multilabel", smooth_factor=0.05, pos_weight=pos_weight.tolist())
    close(ours(pred, target), ref(pred, target))


def test_bce_valid_is_a_mean_over_valid_elements() -> None:
    """SMP's SoftBCE zeroes ignored elements but divides by all of them; ours divides by valid."""
    pred, target, valid = batch("multilabel", seed=12)
    keep = valid.unsqueeze(1).expand_as(pred)
    expected = F.binary_cross_entropy_with_logits(pred[keep], target[keep])
    close(build("bce", "multilabel")(pred, target, valid), expected)


# --- regression -------------------------------------------------------------------------------

REGRESSION = [
    (
        "huber",
        huber_loss,
        {"delta": 0.5},
        lambda p, t: F.huber_loss(p, t, delta=0.5, reduction="none"),
    ),
    (
        "smooth_l1",
        smooth_l1_loss,
        {"beta": 0.5},
        lambda p, t: F.smooth_l1_loss(p, t, beta=0.5, reduction="none"),
    ),
    ("l1", l1_loss, {}, lambda p, t: (p - t).abs()),
    ("mse", mse_loss, {}, lambda p, t: (p - t) ** 2),
]


@pytest.mark.parametrize(("name", "fn", "kwargs", "elementwise"), REGRESSION)
@pytest.mark.parametrize("vector", [False, True])
def test_regression_matches_torch_and_manual_masked_mean(
    name: str, fn, kwargs: dict, elementwise, vector: bool
) -> None:
    pred, target, valid = batch("regression", seed=13, vector=vector)
    module = build(name, "regression", **kwargs)
    close(module(pred, target), elementwise(pred, target).mean())
    keep = valid.expand_as(pred)
    manual = (elementwise(pred, target) * keep).sum() / keep.sum()
    close(module(pred, target, valid), manual)
    close(fn(pred, target, valid, **kwargs), manual)


@pytest.mark.parametrize("vector", [False, True])
def test_cosine_matches_torch_and_manual_masked_mean(vector: bool) -> None:
    pred, target, valid = batch("regression", seed=14, vector=vector)
    per_vector = 1 - F.cosine_similarity(pred, target, dim=1)
    module = build("cosine", "regression")
    close(module(pred, target), per_vector.mean())
    keep = valid[:, 0]
    close(module(pred, target, valid), (per_vector * keep).sum() / keep.sum())
    close(cosine_loss(pred, target, valid), (per_vector * keep).sum() / keep.sum())
    # Direction only: scaling the prediction changes nothing.
    close(module(pred * 7, target, valid), module(pred, target, valid))


def test_cosine_vector_invalid_if_any_component_is() -> None:
    pred = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    valid = torch.tensor([[True, True], [True, False]])
    close(cosine_loss(pred, target, valid), torch.tensor(0.0))
    close(cosine_loss(pred, target), torch.tensor(0.5))
