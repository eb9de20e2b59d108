"""Tests for podium.metrics.kaggle_registry: "kaggle_dice" on sigmoid mask-head scores."""

from __future__ import annotations

import pytest
import torch

import podium.metrics.kaggle_registry  # noqa: F401  (registers the metric)
from podium.metrics.core import METRICS, MetricContext, build_metrics
from podium.metrics.kaggle_registry import KaggleDiceFromScores, scores_to_mask

CTX = MetricContext(mode="multilabel", num_classes=2)


def _hand_case() -> tuple[torch.Tensor, torch.Tensor]:
    """2 images × 2 classes × 2×2 logits and targets; pair Dice 1, 1, 2/3, 0."""
    logits = torch.full((2, 2, 2, 2), -5.0)
    target = torch.zeros(2, 2, 2, 2)
    logits[0, 0, 0, 0] = 5.0  # exact hit
    target[0, 0, 0, 0] = 1
    # image 0, class 2: empty prediction on an empty truth → 1
    logits[1, 0, 0, :] = 5.0  # 2 predicted, 1 true → 2·1 / 3
    target[1, 0, 0, 0] = 1
    logits[1, 1, 1, 1] = 5.0  # false positive on a clean pair → 0
    return logits, target


def test_registered_and_built_for_multilabel_heads() -> None:
    assert "kaggle_dice" in METRICS
    metric = METRICS.get("kaggle_dice")(CTX)
    assert isinstance(metric, KaggleDiceFromScores) and metric.num_classes == 2
    with pytest.raises(ValueError, match="sigmoid"):
        METRICS.get("kaggle_dice")(MetricContext(mode="multiclass", num_classes=3))


def test_hand_case_from_logits_and_from_probabilities() -> None:
    logits, target = _hand_case()
    for preds in (logits, torch.sigmoid(logits)):
        metric = METRICS.get("kaggle_dice")(CTX)
        metric.update(preds, target)
        out = metric.compute()
        assert float(out["kaggle_dice"]) == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
        assert float(out["kaggle_dice_class1"]) == pytest.approx((1 + 2 / 3) / 2)
        assert float(out["kaggle_dice_class2"]) == pytest.approx(0.5)


def test_accumulates_over_batches_like_one_batch() -> None:
    logits, target = _hand_case()
    split = METRICS.get("kaggle_dice")(CTX)
    split.update(logits[:1], target[:1])
    split.update(logits[1:], target[1:])
    whole = METRICS.get("kaggle_dice")(CTX)
    whole.update(logits, target)
    assert float(split.compute()["kaggle_dice"]) == float(whole.compute()["kaggle_dice"])


def test_threshold_rules() -> None:
    probs = torch.tensor([0.5, 0.49, 0.3]).view(1, 1, 1, 3)
    assert scores_to_mask(probs).flatten().tolist() == [True, False, False]  # p >= 0.5
    # A negative value makes "auto" read the tensor as logits: sigmoid(0.3) > 0.5.
    mixed = torch.tensor([-1.0, 0.3, 0.0]).view(1, 1, 1, 3)
    assert scores_to_mask(mixed).flatten().tolist() == [False, True, True]
    assert scores_to_mask(probs, inputs="logits").flatten().tolist() == [True, True, True]
    binary = torch.tensor([1, 0], dtype=torch.uint8).view(1, 1, 1, 2)
    assert scores_to_mask(binary) is binary
    with pytest.raises(ValueError, match="inputs"):
        scores_to_mask(probs, inputs="odds")  # type: ignore[arg-type]


def test_ignore_index_counts_for_neither_side() -> None:
    metric = METRICS.get("kaggle_dice")(MetricContext("multilabel", 1, ignore_index=255))
    logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])
    target = torch.tensor([[[[1, 255], [0, 255]]]], dtype=torch.uint8)
    metric.update(logits, target)
    assert float(metric.compute()["kaggle_dice"]) == 1.0  # the stray positive sits on 255


def test_collection_keys_for_logging() -> None:
    logits, target = _hand_case()
    collection = build_metrics(["kaggle_dice"], CTX)
    collection.update(logits, target)
    keys = set(collection.compute())
    assert keys == {"kaggle_dice", "kaggle_dice_class1", "kaggle_dice_class2"}
