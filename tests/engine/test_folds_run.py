"""k-fold workflow on rle_csv data: samples from the CSV's image folder, presence-stratified
folds, and fold samples choosing exactly the dataset's image ids."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from podium.build import build_datamodule, class_presence, dataset_for, split_samples
from podium.config import load_config
from podium.data.folds import read_folds_csv
from podium.data.rle import rle_encode
from podium.data.rle_csv import write_rle_csv
from podium.workflows.folds import fold_samples, run_split

SHAPE = (16, 24)
N_IMAGES = 36
N_SPLITS = 3
# ClassId → how many images hold it; class 1 is rare: one image per fold when stratified.
HOLDERS = {1: 3, 2: 6, 3: 9, 4: 12}


def _write_images(folder: Path, n: int, seed: int) -> list[str]:
    """n distinct random grey PNGs (distinct so the duplicate check stays quiet)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = [f"im{i:02d}.png" for i in range(n)]
    for image_id in ids:
        cv2.imwrite(str(folder / image_id), rng.integers(0, 256, SHAPE, dtype=np.uint8))
    return ids


def _rows(ids: list[str], holders: dict[int, list[str]]) -> list[tuple[str, int, str]]:
    """One small rectangle per (image, class) listed in holders."""
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[2:5, 3:9] = 1
    return [(i, c, rle_encode(mask)) for c, held in holders.items() for i in held]


@pytest.fixture(scope="module")
def rle_root(tmp_path_factory) -> tuple[Path, dict[int, list[str]]]:
    root = tmp_path_factory.mktemp("rle_folds")
    ids = _write_images(root / "images", N_IMAGES, seed=0)
    order = np.random.default_rng(1).permutation(ids).tolist()
    holders, start = {}, 0
    for class_id, count in HOLDERS.items():
        holders[class_id] = order[start : start + count]  # disjoint: one class per image
        start += count
    write_rle_csv(root / "train.csv", _rows(ids, holders))
    pseudo_ids = _write_images(root / "pseudo", 2, seed=2)
    write_rle_csv(root / "pseudo.csv", [(i, 1, "") for i in pseudo_ids])
    return root, holders


def _config(root: Path, tmp_path: Path, **data):
    return load_config(
        raw={
            "experiment": "rle",
            "seed": 5,
            "output_dir": str(tmp_path / "runs"),
            "data": {
                "format": "rle_csv",
                "images": str(root / "images"),
                "csv": str(root / "train.csv"),
                "val_fraction": 0.1,
                "classes": ["a", "b", "c", "d"],
                "ignore_index": None,
                "batch_size": 2,
                "num_workers": 0,
                "folds": {"csv": str(tmp_path / "folds.csv"), "n_splits": N_SPLITS},
                **data,
            },
            "model": {"encoder_name": "resnet18", "in_channels": 1},
            "heads": {"mask": {"classes": 4, "activation": "sigmoid"}},
        }
    )


def test_split_samples_are_the_split_ids_without_mask_files(rle_root, tmp_path):
    root, _ = rle_root
    config = _config(root, tmp_path)
    train, val = split_samples(config, "train"), split_samples(config, "val")
    assert len(val) == 4 and len(train) == N_IMAGES - 4
    assert {s.image.name for s in train} | {s.image.name for s in val} == {
        p.name for p in (root / "images").iterdir()
    }
    assert all(s.mask is None and s.name == s.image.stem for s in train + val)


def test_presence_comes_from_the_csv_in_sample_order(rle_root, tmp_path):
    root, holders = rle_root
    config = _config(root, tmp_path)
    samples = split_samples(config, "train")[::-1]  # not the dataset's sorted order
    presence = class_presence(config, samples)
    expected = [[s.image.name in holders[c] for c in (1, 2, 3, 4)] for s in samples]
    np.testing.assert_array_equal(presence, expected)


def test_stratified_split_gives_each_fold_its_share_of_every_class(rle_root, tmp_path):
    root, holders = rle_root
    config = _config(root, tmp_path, val_fraction=0.01)  # one val image: class 1 stays whole
    train = split_samples(config, "train")
    path, folds, _ = run_split(config)
    assert read_folds_csv(path) == folds
    assert sorted(folds) == sorted(s.name for s in train)  # names are the file stems
    names = {s.name for s in train}
    for class_id, held in holders.items():
        stems = [Path(i).stem for i in held if Path(i).stem in names]
        per_fold = Counter(folds[s] for s in stems)
        # Random folds would put 2 of the 3 rare-class images in one fold most of the time.
        assert max(per_fold.values()) - min(per_fold.get(k, 0) for k in range(N_SPLITS)) <= 1, (
            class_id,
            per_fold,
        )


def test_fold_samples_choose_the_dataset_ids(rle_root, tmp_path):
    root, _ = rle_root
    config = _config(root, tmp_path)
    run_split(config)
    train, val = fold_samples(config, 1)
    dataset = dataset_for(config, "val", samples=val, augment=False)
    assert dataset.ids == sorted(s.image.name for s in val)
    assert sorted(dataset[i]["name"] for i in range(len(dataset))) == sorted(s.name for s in val)
    module = build_datamodule(config, samples=(train, val))
    assert module.train_set.ids == sorted(s.image.name for s in train)
    assert not set(module.train_set.ids) & set(module.val_set.ids)


def test_fold_training_set_keeps_the_pseudo_label_mix(rle_root, tmp_path):
    root, _ = rle_root
    pseudo = {"images": str(root / "pseudo"), "csv": str(root / "pseudo.csv"), "fraction": 0.5}
    config = _config(root, tmp_path, pseudo=pseudo)
    run_split(config)
    train, val = fold_samples(config, 0)
    train_set = dataset_for(config, "train", samples=train)
    labelled, _ = train_set.datasets
    assert labelled.ids == sorted(s.image.name for s in train)
    assert (train_set.n_labelled, train_set.n_pseudo) == (len(train), 2)
    assert len(dataset_for(config, "val", samples=val)) == len(val)  # val: never pseudo


def test_class_balanced_sampler_weights_rle_images_by_their_rarest_class(rle_root, tmp_path):
    root, holders = rle_root
    config = _config(root, tmp_path, sampler="class_balanced")
    module = build_datamodule(config)
    sampler = module.train_dataloader().sampler
    weights = dict(zip(module.train_set.ids, sampler.weights.tolist()))
    rare = [weights[i] for i in holders[1] if i in weights]
    common = [weights[i] for i in holders[4] if i in weights]
    assert rare and common and min(rare) > max(common)  # class 1 is 4× rarer than class 4


def test_pseudo_mix_batches_repeat_with_any_worker_count(rle_root, tmp_path):
    from lightning.fabric.utilities.data import _set_sampler_epoch

    from podium.data.pseudo_sampler import PseudoLabelBatchSampler

    root, _ = rle_root
    pseudo = {"images": str(root / "pseudo"), "csv": str(root / "pseudo.csv"), "fraction": 0.5}
    train = [
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
        {"__class_fullname__": "RandomCrop", "height": 8, "width": 8, "p": 1.0},
    ]

    def two_epochs(workers: int) -> list[tuple]:
        config = _config(root, tmp_path, pseudo=pseudo, num_workers=workers)
        config.augmentation.train = train
        loader = build_datamodule(config).train_dataloader()
        assert isinstance(loader.batch_sampler, PseudoLabelBatchSampler)
        out = []
        for epoch in range(2):
            _set_sampler_epoch(loader, epoch)
            out += [(b["name"], b["image"], b["mask"]) for b in loader]
        return out

    reference = two_epochs(0)
    for (names, image, mask), other in zip(reference, two_epochs(2), strict=True):
        assert names == other[0] and (image == other[1]).all() and (mask == other[2]).all()
