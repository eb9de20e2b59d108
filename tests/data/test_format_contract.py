"""Every registered data format lists samples, reports a bad label naming its file, and yields
batches with the documented keys and dtypes. A format without a case in CASES fails here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from dense_cases import dense_data_section, make_dense_split
from torch.utils.data import DataLoader

from podium.build import class_presence, data_spec, dataset_for, split_samples
from podium.build.validation import split_report
from podium.config import load_config
from podium.data.formats import FORMATS
from podium.data.rle_csv import read_rle_csv
from podium.data.severstal import make_severstal_dataset
from podium.data.synthetic import make_aeroscapes_dataset

FLIP = [{"__class_fullname__": "HorizontalFlip", "p": 0.5}]


@dataclass(frozen=True)
class Case:
    """How to make a tiny dataset of one format and break one of its labels."""

    build: Callable[[Path], dict]  # writes the files under root, returns the `data` section
    corrupt: Callable[[Path], Path]  # breaks one label under root, returns the file to name
    keys: dict[str, tuple[torch.dtype, int]]  # batch key → dtype and dimensions (batch included)
    heads: dict = field(default_factory=lambda: {"mask": {"classes": 3}})
    model: dict = field(default_factory=dict)


def _folder(root: Path) -> dict:
    make_dense_split(root / "train", n=4, seed=1)
    make_dense_split(root / "val", n=2, seed=2)
    return dense_data_section(root)


def _break_first_mask(folder: Path) -> Path:
    mask = sorted(folder.iterdir())[0]
    mask.write_bytes(b"not a png at all")
    return mask


def _aeroscapes(root: Path) -> dict:
    make_aeroscapes_dataset(root, n_train=4, n_val=2, size=(32, 48), num_classes=3)
    return {"format": "aeroscapes", "root": str(root), "classes": ["a", "b", "c"]}


def _rle_csv(root: Path) -> dict:
    make_severstal_dataset(root, n_train=6, n_test=1, height=32, width=64, seed=3)
    return {
        "format": "rle_csv",
        "images": str(root / "train_images"),
        "csv": str(root / "train.csv"),
        "val_fraction": 0.34,
        "classes": ["a", "b", "c", "d"],
    }


def _rle_past_the_image(root: Path) -> Path:
    """A run that starts past the 32×64 image's last pixel, for an image with no rows yet."""
    csv = root / "train.csv"
    labels = read_rle_csv(csv)
    free = next(p.name for p in sorted((root / "train_images").iterdir()) if p.name not in labels)
    csv.write_text(csv.read_text() + f"{free},2,5000 10\n")
    return csv


CASES: dict[str, Case] = {
    "folder": Case(
        _folder,
        lambda root: _break_first_mask(root / "train" / "masks"),
        {
            "image": (torch.uint8, 4),
            "mask": (torch.uint8, 3),
            "height": (torch.float32, 4),
            "valid_height": (torch.bool, 3),
            "inputs": (torch.float32, 2),
        },
        model={"inputs": {"gsd": 1}},
    ),
    "aeroscapes": Case(
        _aeroscapes,
        lambda root: _break_first_mask(root / "SegmentationClass"),
        {"image": (torch.uint8, 4), "mask": (torch.uint8, 3)},
    ),
    "rle_csv": Case(
        _rle_csv,
        _rle_past_the_image,
        {"image": (torch.uint8, 4), "defects": (torch.uint8, 4)},
        heads={"defects": {"classes": 4, "activation": "sigmoid"}},
        model={"in_channels": 1},
    ),
}


def test_every_registered_format_has_a_case():
    assert set(CASES) == set(FORMATS.names()), "add a Case for each new format to CASES"


def _config(name: str, root: Path):
    case = CASES[name]  # KeyError: the format has no case
    data = {"num_workers": 0, "batch_size": 2, **case.build(root)}
    model = {"encoder_name": "resnet18", **case.model}
    raw = {"data": data, "model": model, "heads": case.heads, "augmentation": {"train": FLIP}}
    return load_config(raw={"output_dir": str(root / "runs"), **raw})


@pytest.mark.parametrize("name", FORMATS.names())
def test_lists_the_samples_of_every_split(name, tmp_path):
    config = _config(name, tmp_path)
    spec, seen = data_spec(config), set()
    for split in ("train", "val"):
        samples = split_samples(config, split)
        assert samples and all(s.image.is_file() for s in samples), split
        assert all(s.mask is None or s.mask.is_file() for s in samples)
        assert all(path.is_file() for s in samples for path in s.targets.values())
        assert len({s.name for s in samples}) == len(samples), "two samples share a name"
        assert not seen & {s.image for s in samples}, "train and val share image files"
        seen |= {s.image for s in samples}
        presence = class_presence(config, samples)
        assert presence.dtype == bool
        assert presence.shape == (len(samples), config.data.num_classes(spec))


@pytest.mark.parametrize("name", FORMATS.names())
def test_a_clean_dataset_checks_clean_and_a_bad_label_is_named(name, tmp_path):
    config = _config(name, tmp_path)
    for split in config.data.splits():
        report = split_report(config, split_samples(config, split), None, split)
        assert report.ok, report.problems
    bad = CASES[name].corrupt(tmp_path)
    found = [
        problem
        for split in config.data.splits()
        for problem in split_report(config, split_samples(config, split), None, split).problems
    ]
    assert any(problem.file == str(bad) for problem in found), found


@pytest.mark.parametrize("name", FORMATS.names())
def test_a_batch_holds_the_documented_keys_and_dtypes(name, tmp_path):
    config = _config(name, tmp_path)
    dataset = dataset_for(config, "train")
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    expected = CASES[name].keys
    assert set(batch) == {"name", *expected}
    assert len(batch["name"]) == 2 and all(isinstance(n, str) for n in batch["name"])
    height, width = batch["image"].shape[-2:]
    for key, (dtype, ndim) in expected.items():
        value = batch[key]
        if key == "inputs":
            value = value["gsd"]
        assert value.dtype == dtype and value.ndim == ndim, (key, value.dtype, value.shape)
        assert value.shape[0] == 2
        if ndim >= 3:
            assert tuple(value.shape[-2:]) == (height, width), key
