"""Cross-validation folds over image names (scikit-learn splitters) and the folds CSV.

Multi-label stratification: scikit-learn's stratified splitters take one label per sample and
scikit-learn has no multi-label splitter, so an N×C presence matrix is reduced to one stratum
per image by `strata_from_presence`: the image's exact class combination when at least
`n_splits` images share it (so frequent classes stay balanced too), otherwise its rarest
present class (so rare classes are spread over the folds first). Strata still smaller than
`n_splits` are folded into a shared "rare" stratum. The same strata feed StratifiedKFold and
StratifiedGroupKFold, so groups and labels compose.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from tqdm import tqdm

from podium.data.errors import DataError
from podium.data.sample import Sample
from podium.io import atomic_open

__all__ = [
    "METHODS",
    "make_folds",
    "presence_from_masks",
    "read_folds_csv",
    "strata_from_presence",
    "write_folds_csv",
]

Method = Literal["random", "stratified", "group", "stratified_group"]
METHODS: tuple[str, ...] = ("random", "stratified", "group", "stratified_group")
_RARE = "rare"  # the stratum that collects images whose own stratum is too small to split
_SHOW = 10  # how many offending names an error lists


def strata_from_presence(presence: np.ndarray, n_splits: int) -> np.ndarray:
    """N×C bool class presence → N str strata (combination if frequent, else rarest class)."""
    presence = np.asarray(presence, dtype=bool)
    combos = [row.tobytes().hex() for row in np.packbits(presence, axis=1)]
    combo_count = Counter(combos)
    rarest = _rarest_present(presence, n_splits)
    strata = np.array(
        [f"c{c}" if combo_count[c] >= n_splits else r for c, r in zip(combos, rarest)],
        dtype=object,
    )
    # A rarest-class stratum can still be small when most of that class's images were
    # claimed by frequent combinations; those go to the shared rare stratum.
    count = Counter(strata.tolist())
    small = np.array([count[s] < n_splits for s in strata], dtype=bool)
    strata[small] = _RARE
    return strata.astype(str)


def _rarest_present(presence: np.ndarray, n_splits: int) -> list[str]:
    """N×C bool → per image the id of its rarest class held by ≥ n_splits images, or rare."""
    freq = presence.sum(axis=0)
    usable = presence & (freq >= n_splits)[None, :]
    # Rank classes by frequency so argmin over a masked rank picks the rarest present one.
    rank = np.where(usable, freq[None, :], np.iinfo(np.int64).max)
    best = rank.argmin(axis=1)
    return [f"r{b}" if usable[i, b] else _RARE for i, b in enumerate(best)]


def make_folds(
    names: Sequence[str],
    n_splits: int,
    method: Method = "random",
    seed: int = 0,
    labels: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
) -> dict[str, int]:
    """Name → fold in 0..n_splits-1; labels: N×C presence (or N ids), groups: N group keys."""
    _check_inputs(names, n_splits, method, labels, groups)
    y = _strata(labels, n_splits) if method in ("stratified", "stratified_group") else None
    g = np.asarray(groups, dtype=str) if method in ("group", "stratified_group") else None
    splitter = _splitter(method, n_splits, seed)
    with warnings.catch_warnings():
        # Expected when the rare stratum is smaller than n_splits; it is spread as far as it goes.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        splits = list(splitter.split(np.zeros((len(names), 1)), y, g))
    folds: dict[str, int] = {}
    for fold, (_, held_out) in enumerate(splits):
        for i in held_out:
            folds[names[i]] = fold
    return {name: folds[name] for name in names}


def _strata(labels: np.ndarray, n_splits: int) -> np.ndarray:
    """N ids kept as they are; N×C presence reduced by `strata_from_presence`."""
    labels = np.asarray(labels)
    return labels if labels.ndim == 1 else strata_from_presence(labels, n_splits)


def _splitter(method: str, n_splits: int, seed: int):
    """The scikit-learn splitter for `method`, shuffled with `seed`."""
    makers: dict[str, Callable] = {
        "random": KFold,
        "stratified": StratifiedKFold,
        "group": GroupKFold,  # shuffle= needs scikit-learn ≥ 1.6
        "stratified_group": StratifiedGroupKFold,
    }
    return makers[method](n_splits=n_splits, shuffle=True, random_state=seed)


def _check_inputs(names, n_splits, method, labels, groups) -> None:
    """Raise ValueError naming the problem with the arguments of `make_folds`."""
    if method not in METHODS:
        raise ValueError(f"fold method must be one of {METHODS}, got {method!r}")
    duplicated = sorted(n for n, k in Counter(names).items() if k > 1)
    if duplicated:
        raise ValueError(f"duplicate image names: {', '.join(duplicated[:_SHOW])}")
    if not 2 <= n_splits <= len(names):
        raise ValueError(f"n_splits must be in 2..{len(names)} (the image count), got {n_splits}")
    if method in ("stratified", "stratified_group"):
        if labels is None:
            raise ValueError(f"fold method {method!r} needs labels (N×C class presence)")
        if len(labels) != len(names):
            raise ValueError(f"labels has {len(labels)} rows for {len(names)} names")
    if method in ("group", "stratified_group"):
        if groups is None:
            raise ValueError(f"fold method {method!r} needs groups (one key per image)")
        if len(groups) != len(names):
            raise ValueError(f"groups has {len(groups)} entries for {len(names)} names")
        if len(set(groups)) < n_splits:
            raise ValueError(f"{len(set(groups))} distinct groups cannot fill {n_splits} folds")


def presence_from_masks(
    samples: Sequence[Sample],
    read_mask: Callable[[Path], np.ndarray],
    num_classes: int,
    progress: bool = False,
) -> np.ndarray:
    """N×C bool: which classes each image's mask holds (ignore pixels count for none)."""
    presence = np.zeros((len(samples), num_classes), dtype=bool)
    for i, sample in enumerate(tqdm(samples, desc="class presence", disable=not progress)):
        if sample.mask is None:
            raise DataError(f"image {sample.image} has no mask; class presence needs masks")
        mask = read_mask(sample.mask)
        # Ids ≥ num_classes can only be the ignore index (read_mask validates the rest).
        counts = np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
        presence[i] = counts > 0
    return presence


def write_folds_csv(
    path: Path | str, folds: Mapping[str, int], groups: Mapping[str, str] | None = None
) -> None:
    """Write `name,fold[,group]` rows atomically, in the order of `folds`."""
    missing = [n for n in folds if groups is not None and n not in groups]
    if missing:
        raise ValueError(f"no group for {len(missing)} name(s): {', '.join(missing[:_SHOW])}")
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "fold"] + (["group"] if groups is not None else []))
        for name, fold in folds.items():
            writer.writerow([name, int(fold)] + ([groups[name]] if groups is not None else []))


def read_folds_csv(path: Path | str) -> dict[str, int]:
    """Name → fold from a `name,fold[,group]` CSV; bad rows raise DataError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"folds file {path} does not exist")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"name", "fold"} <= set(reader.fieldnames):
            raise DataError(f"{path}: the header must name the columns 'name' and 'fold'")
        folds: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            name, fold = (row["name"] or "").strip(), _parse_fold(row["fold"], path, line)
            if not name:
                raise DataError(f"{path} line {line}: empty name")
            if name in folds:
                raise DataError(f"{path} line {line}: duplicate name {name!r}")
            folds[name] = fold
    _check_fold_ids(folds, path)
    return folds


def _parse_fold(text: str | None, path: Path, line: int) -> int:
    """A fold cell → non-negative int; anything else raises DataError."""
    try:
        fold = int((text or "").strip())
    except ValueError:
        raise DataError(f"{path} line {line}: fold {text!r} is not an integer") from None
    if fold < 0:
        raise DataError(f"{path} line {line}: fold {fold} is negative")
    return fold


def _check_fold_ids(folds: Mapping[str, int], path: Path) -> None:
    """Folds must be 0..k-1 with none empty: a gap is almost always a truncated file."""
    if not folds:
        raise DataError(f"{path} holds no rows")
    used = set(folds.values())
    gaps = sorted(set(range(max(used) + 1)) - used)
    if gaps:
        raise DataError(f"{path}: folds {gaps} have no images (folds must be 0..{max(used)})")
