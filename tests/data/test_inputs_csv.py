"""Extra model inputs from a per-split CSV: columns per value, every image a row, errors named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dense_cases import dense_data_section, make_dense_split
from torch.utils.data import DataLoader

from podium.build import dataset_for, split_samples
from podium.config import load_config
from podium.data.errors import DataError
from podium.data.inputs_csv import input_columns, read_inputs_csv


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inputs.csv"
    path.write_text(text)
    return path


def test_one_value_is_a_column_of_its_name_and_more_are_numbered(tmp_path):
    assert input_columns("gsd", 1) == ["gsd"]
    assert input_columns("sun", 3) == ["sun_0", "sun_1", "sun_2"]
    path = _csv(tmp_path, "name,gsd,sun_0,sun_1,extra\na,0.5,1,2,x\nb,0.25,3,4,y\n")
    values = read_inputs_csv(path, {"gsd": 1, "sun": 2}, ["b", "a"])
    assert values == {
        "b": {"gsd": (0.25,), "sun": (3.0, 4.0)},
        "a": {"gsd": (0.5,), "sun": (1.0, 2.0)},
    }


def test_images_without_a_row_are_named(tmp_path):
    path = _csv(tmp_path, "name,gsd\na,0.5\n")
    with pytest.raises(DataError) as error:
        read_inputs_csv(path, {"gsd": 1}, ["a", "b", "c"])
    assert str(path) in str(error.value) and "b, c" in str(error.value)


def test_missing_columns_are_named(tmp_path):
    path = _csv(tmp_path, "name,gsd\na,0.5\n")
    with pytest.raises(DataError) as error:
        read_inputs_csv(path, {"gsd": 1, "sun": 2}, ["a"])
    assert str(path) in str(error.value) and "sun_0, sun_1" in str(error.value)


@pytest.mark.parametrize("cell", ["abc", "", "nan", "inf"])
def test_a_cell_that_is_no_finite_number_is_named_by_row(tmp_path, cell):
    path = _csv(tmp_path, f"name,gsd\na,0.5\nb,{cell}\n")
    with pytest.raises(DataError, match=r"line 3 \('b'\): gsd"):
        read_inputs_csv(path, {"gsd": 1}, ["a", "b"])


def test_duplicate_names_are_an_error(tmp_path):
    path = _csv(tmp_path, "name,gsd\na,0.5\na,0.7\n")
    with pytest.raises(DataError, match="line 3: duplicate name 'a'"):
        read_inputs_csv(path, {"gsd": 1}, ["a"])


def _config(root: Path, inputs: dict, **split_changes):
    data = dense_data_section(root)
    data["targets"] = {}
    for split, change in split_changes.items():
        data[split].update(change)
    raw = {"data": data, "model": {"inputs": inputs}, "heads": {"mask": {"classes": 3}}}
    return load_config(raw={"output_dir": str(root / "runs"), **raw})


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    make_dense_split(tmp_path / "train", n=3, size=(16, 16), seed=1)
    make_dense_split(tmp_path / "val", n=2, size=(16, 16), seed=2)
    return tmp_path


def test_every_split_needs_its_csv_when_the_model_declares_inputs(root):
    config = _config(root, {"gsd": 1}, val={"inputs": None})
    assert len(split_samples(config, "train")) == 3
    with pytest.raises(DataError, match=r"data.val.inputs"):
        split_samples(config, "val")


def test_batches_carry_the_inputs_by_name(root):
    batch = next(iter(DataLoader(dataset_for(_config(root, {"gsd": 1}), "val"), batch_size=2)))
    assert batch["inputs"]["gsd"].dtype == torch.float32
    assert batch["inputs"]["gsd"].shape == (2, 1)
    assert batch["inputs"]["gsd"][:, 0].tolist() == pytest.approx([0.5, 0.6])


def test_without_declared_inputs_items_have_none(root):
    item = dataset_for(_config(root, {}), "val")[0]
    assert "inputs" not in item


def test_train_tiles_carry_the_inputs_of_their_image(root):
    config = _config(root, {"gsd": 1})
    config.data.train_tiles = {"scales": [1.0], "tile": 32, "overlap": 0.0}
    config.data.ignore_index = 255
    dataset = dataset_for(config, "train")
    assert dataset[0]["inputs"]["gsd"].tolist() == [pytest.approx(0.5)]
