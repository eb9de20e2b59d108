"""Tests for podium.metrics.regression: mae, rmse, r2 against scikit-learn over an epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

from podium.metrics import METRICS, MetricContext, build_metrics

CTX = MetricContext(mode="regression", num_classes=1, spatial=True)
REFERENCE = {"mae": mean_absolute_error, "rmse": root_mean_squared_error, "r2": r2_score}


def _epoch(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of uneven length (as after leaving no-data out): (preds, target) float64, N."""
    rng = np.random.default_rng(seed)
    batches = []
    for n in (37, 5, 120, 1, 64):
        target = rng.normal(10.0, 3.0, size=n)
        batches.append((target + rng.normal(0.5, 2.0, size=n), target))
    return batches


def _accumulate(name: str, batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    metric = METRICS.get(name)(CTX)
    for preds, target in batches:
        metric.update(torch.from_numpy(preds).float(), torch.from_numpy(target).float())
    return float(metric.compute())


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("seed", [0, 1])
def test_epoch_value_matches_sklearn_on_all_elements(name: str, seed: int) -> None:
    batches = _epoch(seed)
    preds = np.concatenate([p for p, _ in batches])
    target = np.concatenate([t for _, t in batches])
    expected = REFERENCE[name](target, preds)
    assert _accumulate(name, batches) == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_rmse_is_the_root_of_the_epoch_mse_not_a_mean_of_batch_rmses() -> None:
    batches = _epoch(2)
    batch_mean = np.mean([root_mean_squared_error(t, p) for p, t in batches])
    whole = np.sqrt(np.mean(np.concatenate([(p - t) ** 2 for p, t in batches])))
    value = _accumulate("rmse", batches)
    assert value == pytest.approx(whole, rel=1e-5)
    assert abs(value - batch_mean) > 1e-3


def test_r2_of_mean_predictor_is_zero_and_of_perfect_prediction_is_one() -> None:
    target = torch.from_numpy(np.random.default_rng(3).normal(size=200)).float()
    halves = (slice(0, 80), slice(80, None))
    mean_metric, perfect_metric = METRICS.get("r2")(CTX), METRICS.get("r2")(CTX)
    for part in halves:
        mean_metric.update(torch.full_like(target[part], float(target.mean())), target[part])
        perfect_metric.update(target[part], target[part])
    assert float(mean_metric.compute()) == pytest.approx(0.0, abs=1e-5)
    assert float(perfect_metric.compute()) == pytest.approx(1.0)


def test_perfect_prediction_has_zero_errors() -> None:
    target = torch.linspace(-5.0, 5.0, 50)
    metrics = build_metrics(["mae", "rmse"], CTX)
    metrics.update(target, target)
    assert {k: float(v) for k, v in metrics.compute().items()} == {"mae": 0.0, "rmse": 0.0}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_registered_and_refused_for_mask_heads(name: str) -> None:
    assert name in METRICS
    with pytest.raises(ValueError, match="regression head"):
        METRICS.get(name)(MetricContext(mode="multiclass", num_classes=3))
