"""Dense targets of the folder format: reading (PNG16/PNG8/TIFF/NPY, scale, offset, nodata),
pairing, the strict checks (named files), and the items the dataset yields."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from dense_cases import NODATA, SCALE, dense_data_section, height_raw, make_dense_split
from PIL import Image
from typer.testing import CliRunner

from podium.build import dataset_for, split_samples
from podium.build.validation import split_report, validated_samples
from podium.cli import app
from podium.config import ConfigError, load_config
from podium.data.dense import DenseTarget, dense_values, read_dense, read_raw_target
from podium.data.errors import DataError
from podium.data.formats import DataSpec, FolderData

SIZE = (32, 48)


def _config(root: Path, **data):
    section = {**dense_data_section(root), **data}
    raw = {"data": section, "model": {"inputs": {"gsd": 1}}, "heads": {"mask": {"classes": 3}}}
    return load_config(raw={"output_dir": str(root / "runs"), **raw})


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    make_dense_split(tmp_path / "train", n=3, size=SIZE, seed=1)
    make_dense_split(tmp_path / "val", n=2, size=SIZE, seed=2)
    return tmp_path


def _write(path: Path, array: np.ndarray) -> Path:
    if path.suffix == ".npy":
        np.save(path, array)
    elif path.suffix == ".tif":
        tifffile.imwrite(path, array)
    else:
        assert cv2.imwrite(str(path), array)
    return path


@pytest.mark.parametrize(
    "name, dtype",
    [("h.png", np.uint16), ("h8.png", np.uint8), ("h.tif", np.uint16), ("h.npy", np.int32)],
)
def test_values_are_raw_times_scale_plus_offset_and_nodata_is_invalid(tmp_path, name, dtype):
    raw = np.arange(6 * 5, dtype=dtype).reshape(6, 5) + 10
    raw[2, 3] = (
        7  # the nodata value (no other pixel holds it): every channel of that pixel is invalid
    )
    path = _write(tmp_path / name, raw)
    values, valid = read_dense(path, DenseTarget(scale=0.5, offset=-1.0, nodata=7), (6, 5))
    assert values.dtype == np.float32 and values.shape == (6, 5, 1)
    expected = raw.astype(np.float64) * 0.5 - 1.0
    np.testing.assert_allclose(values[..., 0][valid], expected[valid], rtol=1e-6)
    assert not valid[2, 3] and valid.sum() == raw.size - 1
    assert np.isfinite(values).all()  # the no-data pixel holds a finite fill


def test_float_tiff_nan_is_invalid_and_npy_holds_k_channels(tmp_path):
    heights = np.full((4, 4), 2.5, np.float32)
    heights[1, 1] = np.nan
    values, valid = read_dense(_write(tmp_path / "f.tif", heights), DenseTarget(), (4, 4))
    assert not valid[1, 1] and valid.sum() == 15 and np.isfinite(values).all()
    vectors = np.stack([np.ones((4, 4)), -np.ones((4, 4))], axis=-1).astype(np.float32)
    values, valid = read_dense(_write(tmp_path / "v.npy", vectors), DenseTarget(channels=2), (4, 4))
    np.testing.assert_array_equal(values, vectors)
    assert valid.all()


def test_colour_png_keeps_the_file_channel_order(tmp_path):
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_raw_target(tmp_path / "c.png"), rgb)


def test_dense_values_mark_nodata_across_channels():
    raw = np.zeros((2, 2, 2), np.uint16)
    raw[0, 1, 1] = NODATA
    _, valid = dense_values(raw, DenseTarget(nodata=NODATA, channels=2))
    assert valid.tolist() == [[True, False], [True, True]]


def test_targets_pair_by_stem_in_each_split_root(root):
    config = _config(root)
    for split in ("train", "val"):
        for sample in split_samples(config, split):
            target = sample.targets["height"]
            assert target == root / split / "heights" / f"{sample.name}.png"


def test_absolute_target_dir_is_a_config_error(root):
    with pytest.raises(ConfigError, match="relative to each split's root"):
        _config(root, targets={"height": {"dir": str(root / "train" / "heights")}})


def test_missing_and_orphan_target_files_are_listed(root):
    heights = root / "train" / "heights"
    first = sorted(heights.iterdir())[0]
    first.rename(heights / "orphan.png")
    with pytest.raises(DataError) as error:
        split_samples(_config(root), "train")
    assert first.stem in str(error.value) and "orphan" in str(error.value)
    assert str(heights) in str(error.value) and str(root / "train" / "images") in str(error.value)


def _problems(root: Path, split: str = "train"):
    config = _config(root)
    return split_report(config, split_samples(config, split), None, split).problems


def test_a_clean_dense_dataset_checks_clean(root):
    assert _problems(root) == [] and _problems(root, "val") == []


def test_unreadable_wrong_size_and_wrong_channels_are_named(root):
    files = sorted((root / "train" / "heights").iterdir())
    files[0].write_bytes(b"garbage")
    _write(files[1], np.zeros((10, 12), np.uint16))
    _write(files[2], np.zeros((*SIZE, 3), np.uint16))
    kinds = {p.file: (p.kind, p.message) for p in _problems(root)}
    assert kinds[str(files[0])][0] == "unreadable_raster"
    kind, message = kinds[str(files[1])]
    assert kind == "target_size" and "12×10" in message and str(files[1]) in message
    assert str(root / "train" / "images" / f"{files[1].stem}.png") in message
    assert kinds[str(files[2])][0] == "target_channels"


def test_nan_without_nodata_is_a_problem(root):
    heights = root / "train" / "heights"
    for path in heights.iterdir():
        path.unlink()
    for image in (root / "train" / "images").iterdir():
        values = np.ones(SIZE, np.float32)
        values[0, 0] = np.nan
        np.save(heights / f"{image.stem}.npy", values)
    config = _config(root, targets={"height": {"dir": "heights"}})
    problems = split_report(config, split_samples(config, "train"), None, "train").problems
    assert {p.kind for p in problems} == {"nonfinite_raster"} and "nodata" in problems[0].message


def test_check_cli_and_the_train_start_pass_name_a_bad_target(root, tmp_path):
    bad = sorted((root / "train" / "heights").iterdir())[0]
    bad.write_bytes(b"broken")
    config = _config(root)
    with pytest.raises(DataError, match=bad.name):
        validated_samples(config, "train", "error", tmp_path / "cache")
    kept = validated_samples(config, "train", "skip", tmp_path / "cache")
    assert bad.stem not in {s.name for s in kept} and len(kept) == 2
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    result = CliRunner().invoke(app, ["check", "-c", str(path), "--output", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert str(bad) in (tmp_path / "r" / "validation-train.txt").read_text()


def test_items_carry_float_targets_valid_maps_and_inputs(root):
    config = _config(root)
    item = dataset_for(config, "val", augment=False)[0]
    assert set(item) == {"image", "name", "mask", "height", "valid_height", "inputs"}
    height, valid = item["height"], item["valid_height"]
    assert height.dtype.is_floating_point and height.shape == (1, *SIZE)
    assert str(valid.dtype) == "torch.bool" and valid.shape == SIZE
    raw = height_raw(0, SIZE)
    assert not valid[:3, :4].any() and valid.sum() == raw.size - 12
    np.testing.assert_allclose(height[0][valid].numpy(), raw[valid.numpy()] * SCALE, rtol=1e-6)
    assert item["inputs"]["gsd"].tolist() == [pytest.approx(0.5)]


def test_without_nodata_and_transform_there_is_no_valid_map(root):
    config = _config(root, targets={"height": {"dir": "heights", "scale": SCALE}})
    item = dataset_for(config, "val", augment=False)[0]
    assert "height" in item and "valid_height" not in item


def test_dense_only_split_without_masks_yields_no_mask(tmp_path):
    make_dense_split(tmp_path / "train", n=2, size=SIZE, masks=False)
    make_dense_split(tmp_path / "val", n=2, size=SIZE, masks=False)
    data = FolderData.model_validate(dense_data_section(tmp_path, masks=False))
    spec = DataSpec(mask_key=None, inputs={"gsd": 1})
    samples = data.samples("val", spec)
    assert all(s.mask is None for s in samples)
    item = data.dataset(samples, spec)[1]
    assert "mask" not in item and item["height"].shape == (1, *SIZE)


def test_train_tiles_refuse_dense_targets(root):
    config = _config(root, train_tiles={"scales": [1.0], "tile": 32})
    with pytest.raises(DataError, match="train_tiles"):
        dataset_for(config, "train")


def test_ram_cache_keeps_images_and_masks_while_dense_targets_are_read(root):
    from podium.data.cache import fill_ram_caches

    config = _config(root)
    plain, cached = (dataset_for(config, "val", augment=False) for _ in range(2))
    fill_ram_caches([cached], max_gb=1.0)
    for index in range(len(plain)):
        a, b = plain[index], cached[index]
        assert a.keys() == b.keys()
        for key in ("image", "mask", "height", "valid_height"):
            assert torch.equal(a[key], b[key]), key
