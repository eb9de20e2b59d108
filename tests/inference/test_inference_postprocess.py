"""Post-processing: argmax/thresholds, min-area, image-level rule, ignore fill, YAML."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from podium.inference.postprocess import (
    PostProcess,
    PostProcessError,
    apply_postprocess,
    load_postprocess,
    remove_small_components,
    save_postprocess,
)


def _blobs() -> np.ndarray:
    """10×12 bool mask: components of 1, 2 (diagonal), 4 and 9 pixels."""
    mask = np.zeros((10, 12), bool)
    mask[0, 0] = True  # area 1
    mask[0, 5] = mask[1, 6] = True  # area 2, joined only diagonally (8-connectivity)
    mask[4:6, 0:2] = True  # area 4
    mask[6:9, 8:11] = True  # area 9
    return mask


@pytest.mark.parametrize(("min_area", "kept"), [(0, 16), (2, 15), (3, 13), (5, 9), (10, 0)])
def test_min_area_removes_exactly_the_small_components(min_area, kept):
    out = remove_small_components(_blobs(), min_area)
    assert out.sum() == kept
    assert not (out & ~_blobs()).any()  # never adds pixels
    if min_area == 5:
        expected = np.zeros_like(out)
        expected[6:9, 8:11] = True
        assert np.array_equal(out, expected)


def _probs_from_labels(labels: np.ndarray, k: int, high: float = 0.9) -> np.ndarray:
    probs = np.full((k, *labels.shape), (1 - high) / (k - 1), np.float32)
    for c in range(k):
        probs[c][labels == c] = high
    return probs


def test_multiclass_min_area_turns_small_components_into_background():
    labels = np.where(_blobs(), 2, 0)
    labels[9, 0:3] = 1  # a 3-pixel class-1 component
    pp = PostProcess(num_classes=3, min_area=(0, 3, 5))
    out = apply_postprocess(_probs_from_labels(labels, 3), pp)
    expected = np.where(remove_small_components(_blobs(), 5), 2, 0)
    expected[9, 0:3] = 1
    assert out.dtype == np.uint8 and np.array_equal(out, expected)


def test_multilabel_thresholds_are_per_class():
    probs = np.stack([np.full((4, 4), 0.4), np.full((4, 4), 0.4), np.full((4, 4), 0.7)])
    pp = PostProcess(num_classes=3, thresholds=(0.3, 0.5, 0.8))
    out = apply_postprocess(torch.from_numpy(probs), pp, multilabel=True)
    assert out.shape == (3, 4, 4) and out.dtype == bool
    assert out[0].all() and not out[1].any() and not out[2].any()


def test_multiclass_thresholds_send_unsure_pixels_to_background():
    probs = np.zeros((3, 1, 3), np.float32)
    probs[:, 0, 0] = (0.1, 0.5, 0.4)  # class 1 at 0.5 < 0.6 → background
    probs[:, 0, 1] = (0.1, 0.7, 0.2)  # class 1 at 0.7 ≥ 0.6
    probs[:, 0, 2] = (0.2, 0.1, 0.7)  # class 2 at 0.7 ≥ 0.3
    out = apply_postprocess(probs, PostProcess(num_classes=3, thresholds=(0.0, 0.6, 0.3)))
    assert out.tolist() == [[0, 1, 2]]


def test_image_level_rule_clears_a_class_whose_max_probability_is_low():
    labels = np.zeros((6, 6), int)
    labels[1:4, 1:4] = 1
    labels[4:6, 4:6] = 2
    probs = _probs_from_labels(labels, 3, high=0.6)
    pp = PostProcess(num_classes=3, image_threshold=(0.0, 0.5, 0.7))
    out = apply_postprocess(probs, pp)
    assert (out[1:4, 1:4] == 1).all() and (out[4:6, 4:6] == 0).all()


def test_ignore_fill_value_nearest_and_most_likely():
    labels = np.zeros((4, 6), int)
    labels[:, 3:] = 2
    labels[:, 2] = 1  # the prediction under the invalid column
    probs = _probs_from_labels(labels, 3)
    valid = np.ones((4, 6), bool)
    valid[:, 2] = False
    kept = apply_postprocess(probs, PostProcess(num_classes=3), valid=valid)
    assert (kept[:, 2] == 1).all()
    filled = apply_postprocess(probs, PostProcess(num_classes=3, ignore_fill=2), valid=valid)
    assert (filled[:, 2] == 2).all() and np.array_equal(filled[:, [0, 1, 3]], labels[:, [0, 1, 3]])
    valid[:, 3] = False  # column 2 is now nearer to column 1 (class 0) than to column 4
    nearest = apply_postprocess(
        probs, PostProcess(num_classes=3, ignore_fill="nearest"), valid=valid
    )
    assert (nearest[:, 2] == 0).all() and (nearest[:, 3] == 2).all()


def test_yaml_round_trip(tmp_path):
    pp = PostProcess(
        num_classes=3,
        thresholds=(0.5, 0.45, 0.6),
        min_area=(0, 120, 40),
        image_threshold=(0.0, 0.7, 0.5),
        ignore_fill="nearest",
    )
    save_postprocess(pp, tmp_path / "pp.yaml")
    assert load_postprocess(tmp_path / "pp.yaml", num_classes=3) == pp
    assert "min_area:\n- 0\n- 120" in (tmp_path / "pp.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("num_classes: 3\nmin_area: [0, 10]\n", "key 'min_area' has 2 values, expected 3"),
        ("num_classes: 2\nthresholds: [0.5, 1.5]\n", "key 'thresholds' must hold probabilities"),
        ("num_classes: 2\nmin_area: [0, -1]\n", "key 'min_area' must hold whole numbers"),
        ("num_classes: 2\nimage_threshold: 0.5\n", "key 'image_threshold' must be a list"),
        ("num_classes: 2\nmin_areas: [0, 1]\n", r"unknown key\(s\) \['min_areas'\]"),
        ("thresholds: [0.5]\n", "key 'num_classes' is missing"),
        ("num_classes: 2\nignore_fill: closest\n", "key 'ignore_fill'"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("num_classes: [\n", "cannot read"),
    ],
)
def test_bad_yaml_error_names_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PostProcessError, match=message) as error:
        load_postprocess(path)
    assert str(path) in str(error.value)


def test_class_count_must_match_the_head(tmp_path):
    save_postprocess(PostProcess(num_classes=2, min_area=(0, 5)), tmp_path / "pp.yaml")
    with pytest.raises(PostProcessError, match="'num_classes' is 2 but the head has 3"):
        load_postprocess(tmp_path / "pp.yaml", num_classes=3)
    with pytest.raises(ValueError, match="3 classes, post-processing has 2"):
        apply_postprocess(np.zeros((3, 2, 2)), PostProcess(num_classes=2))


def test_class_head_rule_clears_classes_the_head_judges_absent():
    probs = np.zeros((3, 4, 4), np.float32)
    probs[:, 1:3, 1:3] = 0.9  # every class predicts the same confident square
    pp = PostProcess(num_classes=3, class_threshold=(0.5, 0.5, 0.2))
    out = apply_postprocess(probs, pp, multilabel=True, class_probs=np.array([0.6, 0.4, 0.3]))
    assert out.reshape(3, -1).sum(1).tolist() == [4, 0, 4]  # only class 2's head is below
    # One "has defect" probability serves every class.
    single = apply_postprocess(probs, pp, multilabel=True, class_probs=torch.tensor([0.3]))
    assert single.reshape(3, -1).sum(1).tolist() == [0, 0, 4]
    # Multi-class: class 1 wins the square; cleared, it becomes background 0.
    probs[0], probs[2] = 0.05, 0.05
    kept = apply_postprocess(probs, pp, class_probs=np.array([0.6, 0.6, 0.3]))
    cleared = apply_postprocess(probs, pp, class_probs=np.array([0.6, 0.4, 0.3]))
    assert (kept[1:3, 1:3] == 1).all() and kept.sum() == 4
    assert (cleared == 0).all()


def test_class_head_rule_without_class_probabilities_is_an_error():
    pp = PostProcess(num_classes=2, class_threshold=(0.5, 0.5))
    with pytest.raises(PostProcessError, match="needs a model with a class head"):
        apply_postprocess(np.zeros((2, 3, 3), np.float32), pp, multilabel=True)
    with pytest.raises(PostProcessError, match="has 3 outputs"):
        apply_postprocess(
            np.zeros((2, 3, 3), np.float32), pp, multilabel=True, class_probs=np.ones(3)
        )
    with pytest.raises(PostProcessError, match="class_threshold"):
        PostProcess(num_classes=2, class_threshold=(0.5, 1.5))
