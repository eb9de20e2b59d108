"""Folds: every splitter's coverage, groups, stratification, determinism, CSV and errors."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from podium.data.errors import DataError
from podium.data.folds import (
    METHODS,
    make_folds,
    presence_from_masks,
    read_folds_csv,
    strata_from_presence,
    write_folds_csv,
)
from podium.data.formats import Sample, folder_samples
from podium.data.images import read_mask
from podium.data.synthetic import make_folder_dataset

K = 5
N = 300
PREVALENCE = np.array([0.6, 0.4, 0.2, 0.08, 0.04])  # two rare classes: 24 and 12 images


@pytest.fixture(scope="module")
def presence() -> np.ndarray:
    return np.random.default_rng(7).random((N, len(PREVALENCE))) < PREVALENCE


@pytest.fixture(scope="module")
def names() -> list[str]:
    return [f"img_{i:03d}" for i in range(N)]


@pytest.fixture(scope="module")
def groups() -> list[str]:
    # Groups of 1..5 images (a patient, a video), shuffled over the name list.
    sizes = np.random.default_rng(3).integers(1, 6, size=N)
    keys = np.repeat(np.arange(N), sizes)[:N]
    return [f"g{k}" for k in np.random.default_rng(4).permutation(keys)]


def _folds(method: str, names, presence, groups, seed: int = 0) -> dict[str, int]:
    return make_folds(names, K, method, seed, labels=presence, groups=groups)


def _max_share_deviation(folds: dict[str, int], names, presence) -> np.ndarray:
    """Per class: the largest |share in a fold − overall share| over the folds."""
    fold = np.array([folds[n] for n in names])
    overall = presence.mean(axis=0)
    return np.max([np.abs(presence[fold == k].mean(axis=0) - overall) for k in range(K)], axis=0)


@pytest.mark.parametrize("method", METHODS)
def test_every_name_gets_one_fold_and_every_fold_is_used(method, names, presence, groups) -> None:
    folds = _folds(method, names, presence, groups)
    assert list(folds) == names
    assert all(isinstance(f, int) and 0 <= f < K for f in folds.values())
    assert set(folds.values()) == set(range(K))


@pytest.mark.parametrize("method", ["group", "stratified_group"])
def test_no_group_spans_two_folds(method, names, presence, groups) -> None:
    folds = _folds(method, names, presence, groups)
    fold_of_group: dict[str, set[int]] = {}
    for name, group in zip(names, groups):
        fold_of_group.setdefault(group, set()).add(folds[name])
    assert all(len(f) == 1 for f in fold_of_group.values())


@pytest.mark.parametrize(
    ("method", "tolerance"), [("stratified", 0.05), ("stratified_group", 0.06)]
)
def test_stratification_keeps_class_shares(method, tolerance, names, presence, groups) -> None:
    # Random folds of 60 images miss the shares by up to 0.05..0.16 for these classes.
    for seed in range(3):
        strat = _folds(method, names, presence, groups, seed)
        rand = _folds("random", names, presence, groups, seed)
        strat = _max_share_deviation(strat, names, presence)
        rand = _max_share_deviation(rand, names, presence)
        assert strat.max() <= tolerance, strat
        assert strat.mean() < rand.mean()


def test_stratified_spreads_rare_classes_evenly(names, presence) -> None:
    fold = np.array([make_folds(names, K, "stratified", 1, labels=presence)[n] for n in names])
    for rare in (3, 4):
        per_fold = np.bincount(fold[presence[:, rare]], minlength=K)
        assert per_fold.max() - per_fold.min() <= 1, per_fold


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_folds_other_seed_other_folds(method, names, presence, groups) -> None:
    first = _folds(method, names, presence, groups, seed=11)
    assert _folds(method, names, presence, groups, seed=11) == first
    assert _folds(method, names, presence, groups, seed=12) != first


def test_one_label_per_image_is_used_as_is(names) -> None:
    labels = np.arange(N) % 3
    fold = np.array([make_folds(names, K, "stratified", 0, labels=labels)[n] for n in names])
    for k in range(K):
        assert np.bincount(labels[fold == k], minlength=3).tolist() == [20, 20, 20]


def test_strata_use_frequent_combinations_and_rarest_class_otherwise() -> None:
    presence = np.array([[1, 0, 0]] * 6 + [[1, 1, 0]] * 2 + [[1, 1, 1]] * 3, dtype=bool)
    strata = strata_from_presence(presence, n_splits=2)
    # 6×"100" is a frequent combination; "110" (2 images) is too, for 2 folds; the three
    # "111" images are a frequent combination as well.
    assert len(set(strata[:6])) == 1 and len(set(strata[6:8])) == 1 and len(set(strata)) == 3
    strata = strata_from_presence(presence, n_splits=4)
    # Now only "100" is frequent; the others fall back to their rarest class with ≥ 4 images:
    # class 2 has 3 images (too rare), class 1 has 5, so all five go to the class-1 stratum.
    assert len(set(strata[6:])) == 1 and strata[6] != strata[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["a", "b", "a"]}, "duplicate image names: a"),
        ({"n_splits": 1}, "n_splits must be in 2..4"),
        ({"n_splits": 5}, "n_splits must be in 2..4"),
        ({"method": "kfold"}, "fold method must be one of"),
        ({"method": "stratified"}, "needs labels"),
        ({"method": "group"}, "needs groups"),
        ({"method": "group", "groups": ["x", "x", "y", "y"], "n_splits": 3}, "2 distinct groups"),
        ({"method": "group", "groups": ["x", "y"]}, "groups has 2 entries for 4 names"),
        ({"method": "stratified", "labels": np.zeros((3, 2))}, "labels has 3 rows for 4 names"),
    ],
)
def test_bad_arguments_raise(kwargs, message) -> None:
    args = {"names": ["a", "b", "c", "d"], "n_splits": 2, "method": "random", "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        make_folds(**args)


def test_csv_round_trip_with_and_without_groups(tmp_path: Path, names, groups) -> None:
    folds = make_folds(names, K, "group", 0, groups=groups)
    write_folds_csv(tmp_path / "folds.csv", folds)
    assert read_folds_csv(tmp_path / "folds.csv") == folds
    write_folds_csv(tmp_path / "grouped.csv", folds, dict(zip(names, groups)))
    assert read_folds_csv(tmp_path / "grouped.csv") == folds
    header, first = (tmp_path / "grouped.csv").read_text().splitlines()[:2]
    assert header == "name,fold,group" and first == f"{names[0]},{folds[names[0]]},{groups[0]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folds.csv", "grouped.csv"]


def test_csv_keeps_names_with_commas_and_quotes(tmp_path: Path) -> None:
    folds = {"a,b": 0, 'say "hi"': 1}
    write_folds_csv(tmp_path / "f.csv", folds)
    assert read_folds_csv(tmp_path / "f.csv") == folds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,fold\na,0\nb,1\na,1\n", "line 4: duplicate name 'a'"),
        ("name,fold\na,0\nb,one\n", "line 3: fold 'one' is not an integer"),
        ("name,fold\na,0\nb,1.5\n", "fold '1.5' is not an integer"),
        ("name,fold\na,0\nb,-1\n", "fold -1 is negative"),
        ("name,split\na,0\n", "must name the columns 'name' and 'fold'"),
        ("name,fold\na,0\nb,2\n", r"folds \[1\] have no images"),
        ("name,fold\n,0\n", "line 2: empty name"),
        ("name,fold\n", "holds no rows"),
    ],
)
def test_bad_csv_raises_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "folds.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        read_folds_csv(tmp_path / "folds.csv")


def test_missing_csv_and_missing_group_raise(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_folds_csv(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="no group for 1 name"):
        write_folds_csv(tmp_path / "f.csv", {"a": 0, "b": 1}, {"a": "g"})
    assert not (tmp_path / "f.csv").exists()


def test_presence_from_masks_matches_unique_ids(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", n=6, num_classes=4, ignore_index=255, seed=5)
    samples = folder_samples(root / "images", root / "masks")
    reader = partial(read_mask, num_classes=4, ignore_index=255)
    presence = presence_from_masks(samples, reader, num_classes=4)
    for row, sample in zip(presence, samples):
        ids = set(np.unique(np.asarray(Image.open(sample.mask))).tolist()) - {255}
        assert set(np.flatnonzero(row).tolist()) == ids


def test_presence_ignores_ignore_pixels_and_needs_masks(tmp_path: Path) -> None:
    mask = np.full((8, 8), 255, dtype=np.uint8)
    mask[:2, :2] = 2
    Image.fromarray(mask).save(tmp_path / "m.png")
    reader = partial(read_mask, num_classes=3, ignore_index=255)
    presence = presence_from_masks([Sample("m", tmp_path / "i.png", tmp_path / "m.png")], reader, 3)
    assert presence.tolist() == [[False, False, True]]
    with pytest.raises(DataError, match="has no mask"):
        presence_from_masks([Sample("m", tmp_path / "i.png")], reader, 3)
