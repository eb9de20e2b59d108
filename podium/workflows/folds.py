"""k-fold workflow: `podium split` writes folds; `train --fold K|all` trains and writes OOF.

Folds partition the config's *train* split; fold K validates on its images and trains on the
rest. Out-of-fold probabilities (one float16 NPZ per image) let evaluation and tuning score
every training image exactly once with a model that never saw it.
"""

from __future__ import annotations

import re
from pathlib import Path

from tqdm import tqdm

from podium.build import class_presence, split_samples
from podium.config import Config
from podium.data.duplicates import near_duplicates_across
from podium.data.folds import make_folds, read_folds_csv, write_folds_csv
from podium.data.formats import Sample

__all__ = ["fold_samples", "run_split", "train_folds", "write_oof"]


def _folds_config(config: Config):
    if config.data.folds is None:
        raise ValueError("data.folds is not set: add `folds: {csv: folds.csv, n_splits: 5}`")
    return config.data.folds


def _groups(names: list[str], pattern: str | None) -> list[str] | None:
    if pattern is None:
        return None
    regex, groups = re.compile(pattern), []
    for name in names:
        match = regex.search(name)
        if match is None:
            raise ValueError(f"data.folds.group_regex {pattern!r} does not match image {name!r}")
        groups.append(match.group(1) if match.groups() else match.group(0))
    return groups


def run_split(config: Config) -> tuple[Path, dict[str, int], list]:
    """Write the folds CSV; return its path, the folds and cross-fold near-duplicates."""
    folds_cfg = _folds_config(config)
    samples = split_samples(config, "train")
    names = [s.name for s in samples]
    groups = _groups(names, folds_cfg.group_regex)
    labels = class_presence(config, samples) if "stratified" in folds_cfg.method else None
    folds = make_folds(names, folds_cfg.n_splits, folds_cfg.method, config.seed, labels, groups)
    write_folds_csv(folds_cfg.csv, folds, dict(zip(names, groups)) if groups else None)
    return folds_cfg.csv, folds, _cross_fold_duplicates(samples, folds, folds_cfg)


def _cross_fold_duplicates(samples: list[Sample], folds: dict[str, int], folds_cfg) -> list:
    """Near-duplicate pairs that sit in different folds: a leak between train and validation."""
    paths = {s.name: s.image for s in samples}
    pairs = near_duplicates_across(paths, paths, folds_cfg.duplicate_distance)
    return [(a, b, d) for a, b, d in pairs if a < b and folds[a] != folds[b]]


def fold_samples(config: Config, fold: int) -> tuple[list[Sample], list[Sample]]:
    """(train, val) samples of fold `fold` from the folds CSV; every image must be listed."""
    folds_cfg = _folds_config(config)
    if not Path(folds_cfg.csv).is_file():
        raise FileNotFoundError(f"folds CSV {folds_cfg.csv} does not exist: run `podium split`")
    folds = read_folds_csv(folds_cfg.csv)
    samples = split_samples(config, "train")
    missing = [s.name for s in samples if s.name not in folds]
    if missing:
        raise ValueError(
            f"{len(missing)} images are not in {folds_cfg.csv} (e.g. {missing[:5]}): "
            "run `podium split` again"
        )
    if fold not in set(folds.values()):
        raise ValueError(
            f"fold {fold} is not in {folds_cfg.csv} (folds: {sorted(set(folds.values()))})"
        )
    train = [s for s in samples if folds[s.name] != fold]
    val = [s for s in samples if folds[s.name] == fold]
    return train, val


def write_oof(config: Config, ckpt: Path, val: list[Sample], out_dir: Path) -> int:
    """Predict the fold's validation images with its best checkpoint; one NPZ per image."""
    from podium.build import dataset_for
    from podium.build.checkpoint import inference_options, load_module
    from podium.inference.pipeline import Predictor
    from podium.inference.probabilities import save_probabilities

    cfg, module = load_module(ckpt, config)
    predictor = Predictor([module], inference_options(cfg))
    dataset = dataset_for(cfg, "val", samples=val, augment=False)
    for index in tqdm(range(len(dataset)), desc="out-of-fold", unit="img"):
        item = dataset[index]
        probs = predictor(item["image"], item.get("inputs"))
        arrays = {k: v.float().cpu().numpy() for k, v in probs.items()}
        save_probabilities(out_dir / f"{item['name']}.npz", arrays)
    return len(dataset)


def train_folds(config: Config, folds: list[int]) -> list[Path]:
    """Train each fold into its own run folder (experiment-foldK) and write its OOF NPZs."""
    from podium.workflows.fit import train

    run_dirs = []
    for fold in folds:
        cfg = config.model_copy(deep=True)
        cfg.experiment = f"{config.experiment}-fold{fold}"
        train_set, val_set = fold_samples(config, fold)
        run_dir = train(cfg, samples=(train_set, val_set))
        oof_dir = Path(config.output_dir) / config.experiment / "oof"
        write_oof(cfg, run_dir / "checkpoints" / "best.ckpt", val_set, oof_dir)
        run_dirs.append(run_dir)
    return run_dirs


def all_folds(config: Config) -> list[int]:
    folds_cfg = _folds_config(config)
    if Path(folds_cfg.csv).is_file():
        return sorted(set(read_folds_csv(folds_cfg.csv).values()))
    return list(range(folds_cfg.n_splits))
