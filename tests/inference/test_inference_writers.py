"""Probability NPZ and timings CSV writers: float16, one key per head, atomic."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from podium.inference.probabilities import (
    load_probabilities,
    save_probabilities,
    write_timings_csv,
)


def test_npz_round_trip_is_float16_with_one_key_per_head(tmp_path):
    probs = {"mask": torch.rand(3, 8, 10), "cls": np.array([0.25, 0.75])}
    save_probabilities(tmp_path / "a.npz", probs)
    loaded = load_probabilities(tmp_path / "a.npz")
    assert set(loaded) == {"mask", "cls"} and loaded["mask"].dtype == np.float16
    np.testing.assert_allclose(loaded["mask"], probs["mask"].numpy(), atol=1e-3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temp file left


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.npz"
    save_probabilities(path, {"mask": np.zeros((1, 2, 2))})
    with pytest.raises(ValueError, match="float16 range"):
        save_probabilities(path, {"mask": np.zeros((1, 2, 2)), "dense": np.array([1e6])})
    with pytest.raises(ValueError, match="NaN"):
        save_probabilities(path, {"mask": np.array([np.nan])})
    assert set(load_probabilities(path)) == {"mask"}
    assert len(list(tmp_path.iterdir())) == 1


def test_timings_csv(tmp_path):
    rows = [{"image": "a", "seconds": 0.5}, {"image": "b", "seconds": 0.25, "tiles": 4}]
    write_timings_csv(tmp_path / "t.csv", rows)
    with open(tmp_path / "t.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert read == [
        {"image": "a", "seconds": "0.5", "tiles": ""},
        {"image": "b", "seconds": "0.25", "tiles": "4"},
    ]
