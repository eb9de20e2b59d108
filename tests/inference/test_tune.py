"""Tests for podium.inference.tune: per-class post-processing search for Kaggle's mean Dice."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from podium.inference.postprocess import PostProcess, apply_postprocess, load_postprocess
from podium.inference.tune import component_stats, dice_over_min_areas, tune_postprocess
from podium.metrics.kaggle import kaggle_dice_per_pair

C, H, W = 3, 24, 32
THRESHOLDS = [0.3, 0.5, 0.7]
MIN_AREAS = [0, 5, 20, 60]
IMAGE_THRESHOLDS = [0.6, 0.9]
CLASS_THRESHOLDS = [0.3, 0.5]


def _blob(rng: np.random.Generator, out: np.ndarray, size: int) -> None:
    y, x = rng.integers(0, H - size), rng.integers(0, W - size)
    out[y : y + size, x : x + size] = True


def _dataset(seed: int = 0, n: int = 8) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Images where every knob matters: per-class noise levels (thresholds), small confident
    spots (min area), defect-sized false blobs of moderate probability (image threshold), and a
    class head that is fairly sure where defects are (class threshold)."""
    rng = np.random.default_rng(seed)
    class_rng = np.random.default_rng(seed + 1000)  # its own stream: pixels stay as they were
    items = []
    for i in range(n):
        truth = np.zeros((C, H, W), dtype=bool)
        probs = np.zeros((C, H, W), dtype=np.float32)
        for c in range(C):
            probs[c] = rng.uniform(0.0, 0.2 + 0.12 * c, size=(H, W))  # noisier for higher c
            if rng.random() < 0.5:  # a real defect: a high peak, some pixels below 0.5
                _blob(rng, truth[c], int(rng.integers(5, 10)))
                probs[c][truth[c]] = rng.uniform(0.45, 0.97, size=truth[c].sum())
            elif rng.random() < 0.5:  # a defect-sized false blob that never gets confident
                blob = np.zeros((H, W), dtype=bool)
                _blob(rng, blob, int(rng.integers(5, 8)))
                probs[c][blob] = rng.uniform(0.5, 0.7, size=blob.sum())
            for _ in range(int(rng.integers(0, 3))):  # small confident false positives
                spot = np.zeros((H, W), dtype=bool)
                _blob(rng, spot, int(rng.integers(1, 4)))
                probs[c][spot] = rng.uniform(0.6, 0.9)
        has = truth.reshape(C, -1).any(1)
        class_probs = np.where(has, class_rng.uniform(0.4, 1, C), class_rng.uniform(0, 0.45, C))
        items.append((f"img{i}", probs, truth, class_probs.astype(np.float32)))
    return items


def _rule_grid(values) -> list:
    return [None] if values is None else sorted({0.0, *values})


def _brute_force(items, image_thresholds, class_thresholds=None) -> np.ndarray:
    """C×T×S×K×A mean Dice from apply_postprocess + kaggle_dice_per_pair on every combination."""
    s_grid, k_grid = _rule_grid(image_thresholds), _rule_grid(class_thresholds)
    table = np.zeros((C, len(THRESHOLDS), len(s_grid), len(k_grid), len(MIN_AREAS)))
    for (ti, t), (si, s), (ki, k), (ai, a) in itertools.product(
        enumerate(THRESHOLDS), enumerate(s_grid), enumerate(k_grid), enumerate(MIN_AREAS)
    ):
        # Classes are independent in multi-label post-processing: one pass scores all of them.
        pp = PostProcess(
            num_classes=C,
            thresholds=(t,) * C,
            min_area=(a,) * C,
            image_threshold=None if s is None else (s,) * C,
            class_threshold=None if k is None else (k,) * C,
        )
        total = np.zeros(C)
        for _, probs, truth, class_probs in items:
            pred = apply_postprocess(probs, pp, multilabel=True, class_probs=class_probs)
            pair = kaggle_dice_per_pair(torch.from_numpy(pred)[None], torch.from_numpy(truth)[None])
            total = total + pair[0].numpy()
        table[:, ti, si, ki, ai] = total / len(items)
    return table


@pytest.mark.parametrize(
    ("image_thresholds", "class_thresholds"),
    [(None, None), (IMAGE_THRESHOLDS, None), (None, CLASS_THRESHOLDS)],
)
def test_matches_brute_force_search(image_thresholds, class_thresholds) -> None:
    items = _dataset()
    pp, report = tune_postprocess(
        iter(items),
        THRESHOLDS,
        MIN_AREAS,
        image_thresholds=image_thresholds,
        class_thresholds=class_thresholds,
    )
    table = _brute_force(items, image_thresholds, class_thresholds)
    np.testing.assert_allclose(np.array(report["scores"]), table, rtol=0, atol=1e-12)
    s_grid, k_grid = report["grid"]["image_thresholds"], report["grid"]["class_thresholds"]
    for c in range(C):
        t, s, k, a = np.unravel_index(int(np.argmax(table[c])), table[c].shape)
        assert pp.thresholds[c] == THRESHOLDS[t]
        assert pp.min_area[c] == MIN_AREAS[a]
        if image_thresholds is None:
            assert pp.image_threshold is None
        else:
            assert pp.image_threshold[c] == s_grid[s]
        if class_thresholds is None:
            assert pp.class_threshold is None
        else:
            assert pp.class_threshold[c] == k_grid[k]
        assert report["classes"][c]["dice"] == pytest.approx(table[c].max(), abs=1e-12)
    assert report["score"] == pytest.approx(table.reshape(C, -1).max(axis=1).mean(), abs=1e-12)
    # The synthetic noise is built so that tuning beats a plain 0.5 threshold.
    assert report["score"] > report["baseline"]
    assert any(a > 0 for a in pp.min_area) and len(set(pp.thresholds)) > 1
    if image_thresholds is not None:
        assert any(s > 0 for s in pp.image_threshold)
    if class_thresholds is not None:
        assert any(k > 0 for k in pp.class_threshold)


def test_class_rule_beats_pixel_rules_when_the_class_head_knows() -> None:
    """A sure class head clears the false blobs no pixel rule can remove."""
    items = _dataset(seed=2, n=12)
    _, without = tune_postprocess(items, THRESHOLDS, MIN_AREAS)
    _, with_class = tune_postprocess(items, THRESHOLDS, MIN_AREAS, class_thresholds=[0.45])
    assert with_class["score"] > without["score"]
    with pytest.raises(ValueError, match="class head probabilities"):
        tune_postprocess([x[:3] for x in items], THRESHOLDS, MIN_AREAS, class_thresholds=[0.5])


def test_tuned_parameters_reproduce_the_score_and_are_saved(tmp_path: Path) -> None:
    items = _dataset(seed=1)
    out = tmp_path / "pp.yaml"
    pp, report = tune_postprocess(
        (x for x in items),
        THRESHOLDS,
        MIN_AREAS,
        image_thresholds=IMAGE_THRESHOLDS,
        output=out,
        class_thresholds=CLASS_THRESHOLDS,
    )
    assert load_postprocess(out, num_classes=C) == pp
    pred = torch.from_numpy(
        np.stack([apply_postprocess(p, pp, multilabel=True, class_probs=k) for _, p, _, k in items])
    )
    truth = torch.from_numpy(np.stack([t for _, _, t, _ in items]))
    assert float(kaggle_dice_per_pair(pred, truth).mean()) == pytest.approx(report["score"])


def test_component_stats_and_area_filter_by_hand() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[0:2, 0:2] = True  # 4 pixels, 1 of them true
    mask[4:6, 4:8] = True  # 8 pixels, all true
    mask[3, 0] = True  # 1 pixel, diagonal to nothing: its own component
    truth = np.zeros_like(mask)
    truth[0, 0] = True
    truth[4:6, 4:8] = True
    areas, overlaps = component_stats(mask, truth)
    assert sorted(zip(areas.tolist(), overlaps.tolist())) == [(1, 0), (4, 1), (8, 8)]
    dice = dice_over_min_areas(areas, overlaps, int(truth.sum()), np.array([0, 2, 5, 9]))
    # |truth| = 9; kept preds: all 13 px (9 hit), 12 (9), 8 (8), none.
    np.testing.assert_allclose(dice, [18 / 22, 18 / 21, 16 / 17, 0.0])
    empty = dice_over_min_areas(areas[:0], overlaps[:0], 0, np.array([0, 5]))
    assert empty.tolist() == [1.0, 1.0]  # empty prediction on a clean pair scores 1


def test_torch_inputs_and_errors() -> None:
    items = _dataset(n=2)
    as_torch = [
        (n, torch.from_numpy(p), torch.from_numpy(t).to(torch.uint8)) for n, p, t, _ in items
    ]
    pp_np, _ = tune_postprocess(items, THRESHOLDS, MIN_AREAS)
    pp_torch, _ = tune_postprocess(as_torch, THRESHOLDS, MIN_AREAS)
    assert pp_np == pp_torch
    with pytest.raises(ValueError, match="no images"):
        tune_postprocess([], THRESHOLDS, MIN_AREAS)
    with pytest.raises(ValueError, match="img0"):
        tune_postprocess([("img0", np.zeros((3, 4, 4)), np.zeros((3, 4, 5)))])
    with pytest.raises(ValueError, match="classes"):
        bad = [items[0], ("x", np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))]
        tune_postprocess(bad, THRESHOLDS, MIN_AREAS)
    with pytest.raises(ValueError, match="thresholds"):
        tune_postprocess(items, [0.5, 1.5], MIN_AREAS)
    with pytest.raises(ValueError, match="whole numbers"):
        tune_postprocess(items, THRESHOLDS, [0, 2.5])
