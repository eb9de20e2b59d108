"""Tests for podium.metrics.kaggle: Severstal's mean Dice over (image, class) pairs."""

from __future__ import annotations

import pytest
import torch

from podium.metrics.kaggle import KaggleDice, kaggle_dice_per_pair


def empty(b: int = 1, c: int = 1, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.zeros(b, c, h, w, dtype=torch.bool)


def naive_dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loop-based reference: Python ints per (image, class) pair."""
    out = torch.zeros(pred.shape[:2], dtype=torch.float64)
    for b in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            x, y = pred[b, c].bool(), target[b, c].bool()
            inter, total = int((x & y).sum()), int(x.sum()) + int(y.sum())
            out[b, c] = 1.0 if total == 0 else 2 * inter / total
    return out


# --- per pair --------------------------------------------------------------------------------


def test_empty_pred_on_empty_truth_is_one() -> None:
    assert kaggle_dice_per_pair(empty(), empty()).tolist() == [[1.0]]


def test_empty_pred_on_nonempty_truth_is_zero() -> None:
    target = empty()
    target[0, 0, 1, 1] = True
    assert kaggle_dice_per_pair(empty(), target).tolist() == [[0.0]]
    # And the other way round: a false-positive on a clean image scores 0 too.
    assert kaggle_dice_per_pair(target, empty()).tolist() == [[0.0]]


def test_partial_overlap_by_hand() -> None:
    pred, target = empty(), empty()
    pred[0, 0, 0, :] = True  # 4 pixels: row 0
    target[0, 0, :, 0] = True  # 4 pixels: column 0
    target[0, 0, 0, 1:3] = True  # +2 pixels in row 0 -> 6 pixels; overlap = (0,0),(0,1),(0,2)
    # 2 * 3 / (4 + 6) = 0.6
    assert kaggle_dice_per_pair(pred, target).item() == pytest.approx(0.6)


def test_shape_and_dtype() -> None:
    out = kaggle_dice_per_pair(empty(3, 4), empty(3, 4))
    assert out.shape == (3, 4) and out.dtype == torch.float64


def test_zero_one_numeric_input_equals_bool() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 8, 8, generator=g) < 0.4
    target = torch.rand(2, 3, 8, 8, generator=g) < 0.4
    expected = kaggle_dice_per_pair(pred, target)
    torch.testing.assert_close(kaggle_dice_per_pair(pred.float(), target.long()), expected)
    torch.testing.assert_close(kaggle_dice_per_pair(pred.to(torch.uint8), target), expected)


def test_matches_naive_reference() -> None:
    g = torch.Generator().manual_seed(1)
    density = torch.rand(5, 4, 1, 1, generator=g) ** 3  # many nearly/fully empty pairs
    pred = torch.rand(5, 4, 16, 20, generator=g) < density
    target = torch.rand(5, 4, 16, 20, generator=g) < density
    pred[0], target[0] = False, False  # guaranteed empty/empty pairs
    torch.testing.assert_close(kaggle_dice_per_pair(pred, target), naive_dice(pred, target))


def test_rejects_probabilities_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="threshold"):
        kaggle_dice_per_pair(torch.full((1, 1, 2, 2), 0.7), empty(1, 1, 2, 2))
    with pytest.raises(ValueError, match="differ"):
        kaggle_dice_per_pair(empty(1, 2), empty(1, 3))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        flat = torch.zeros(4, 4, dtype=torch.bool)
        kaggle_dice_per_pair(flat, flat)


# --- metric ----------------------------------------------------------------------------------


def hand_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """3 images x 2 classes with per-pair Dice [[1, 0.6], [0, 1], [1, 0.5]] (worked out below)."""
    pred, target = empty(3, 2), empty(3, 2)
    # image 0: class 1 empty/empty -> 1; class 2 the 0.6 case from test_partial_overlap_by_hand.
    pred[0, 1, 0, :] = True
    target[0, 1, :, 0] = True
    target[0, 1, 0, 1:3] = True
    # image 1: class 1 missed defect -> 0; class 2 exact match -> 1.
    target[1, 0, 2, 2] = True
    pred[1, 1, 3, :] = True
    target[1, 1, 3, :] = True
    # image 2: class 1 empty/empty -> 1; class 2 pred 2 px, truth 2 px, overlap 1 -> 2/4 = 0.5.
    pred[2, 1, 0, 0:2] = True
    target[2, 1, 0, 1:3] = True
    return pred, target


def test_hand_batch_per_pair() -> None:
    torch.testing.assert_close(
        kaggle_dice_per_pair(*hand_batch()),
        torch.tensor([[1.0, 0.6], [0.0, 1.0], [1.0, 0.5]], dtype=torch.float64),
    )


def test_metric_per_class_values() -> None:
    metric = KaggleDice(num_classes=2)
    metric.update(*hand_batch())
    out = metric.compute()
    assert set(out) == {"kaggle_dice", "kaggle_dice_class1", "kaggle_dice_class2"}
    assert out["kaggle_dice_class1"].item() == pytest.approx((1 + 0 + 1) / 3)
    assert out["kaggle_dice_class2"].item() == pytest.approx((0.6 + 1 + 0.5) / 3)
    assert out["kaggle_dice"].item() == pytest.approx((1 + 0.6 + 0 + 1 + 1 + 0.5) / 6)


def test_multi_batch_equals_one_shot() -> None:
    g = torch.Generator().manual_seed(2)
    density = torch.rand(10, 4, 1, 1, generator=g) ** 2
    pred = torch.rand(10, 4, 12, 30, generator=g) < density
    target = torch.rand(10, 4, 12, 30, generator=g) < density

    one_shot = KaggleDice(num_classes=4)
    one_shot.update(pred, target)
    batched = KaggleDice(num_classes=4)
    for lo, hi in [(0, 3), (3, 4), (4, 10)]:  # uneven batch sizes on purpose
        batched.update(pred[lo:hi], target[lo:hi])

    expected, got = one_shot.compute(), batched.compute()
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    torch.testing.assert_close(expected["kaggle_dice"], naive_dice(pred, target).mean())


def test_merged_states_equal_one_shot() -> None:
    # What DDP does: each rank accumulates its shard and the "sum" states are added up.
    pred, target = hand_batch()
    rank0, rank1, whole = KaggleDice(2), KaggleDice(2), KaggleDice(2)
    rank0.update(pred[:1], target[:1])
    rank1.update(pred[1:], target[1:])
    whole.update(pred, target)
    assert rank0._reductions["dice_sum"] is not None  # registered with a reduction
    rank0.merge_state(rank1)
    for key, value in whole.compute().items():
        torch.testing.assert_close(rank0.compute()[key], value)


def test_reset_and_class_count_check() -> None:
    metric = KaggleDice(num_classes=2)
    metric.update(*hand_batch())
    metric.reset()
    metric.update(empty(2, 2), empty(2, 2))
    assert metric.compute()["kaggle_dice"].item() == 1.0
    with pytest.raises(ValueError, match="expected 2 classes"):
        metric.update(empty(1, 3), empty(1, 3))
    with pytest.raises(ValueError, match="num_classes"):
        KaggleDice(num_classes=0)
