"""`podium split`, `stats` and `check` on rle_csv data (the synthetic Severstal layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from podium.build import split_samples
from podium.cli import app
from podium.config import load_config
from podium.data.folds import make_folds, read_folds_csv
from podium.data.rle_csv import decode_image_masks, read_rle_csv
from podium.data.severstal import make_severstal_dataset

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHAPE = (32, 96)


@pytest.fixture(scope="module")
def severstal(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sev_cli")
    return make_severstal_dataset(root, n_train=30, n_test=1, height=SHAPE[0], width=SHAPE[1])


def _config(root: Path, tmp_path: Path, data_root: Path | None = None) -> Path:
    """configs/severstal.yaml on the demo data (a copy at data_root when given), 3 folds."""
    data_root = data_root or root
    raw = yaml.safe_load((CONFIGS / "severstal.yaml").read_text())
    raw["data"].update(
        images=str(data_root / "train_images"),
        csv=str(data_root / "train.csv"),
        num_workers=0,
        folds={"csv": str(tmp_path / "folds.csv"), "n_splits": 3, "method": "stratified"},
    )
    raw["model"].update(encoder_name="resnet18", encoder_weights=None)
    raw["output_dir"] = str(tmp_path / "runs")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _copy(root: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(root / "train_images", data / "train_images")
    shutil.copy(root / "train.csv", data / "train.csv")
    return data


def test_split_is_stratified_by_csv_class_presence(severstal, tmp_path):
    config = _config(severstal, tmp_path)
    result = runner.invoke(app, ["split", "-c", str(config)])
    assert result.exit_code == 0, result.output
    folds = read_folds_csv(tmp_path / "folds.csv")
    cfg = load_config(config)
    train = split_samples(cfg, "train")
    names = [s.name for s in train]
    assert sorted(folds) == sorted(names)  # the image stems
    labels = read_rle_csv(severstal / "train.csv")
    presence = np.array(
        [[bool(labels.get(s.image.name, {}).get(c)) for c in range(1, 5)] for s in train]
    )
    assert folds == make_folds(names, 3, "stratified", cfg.seed, presence)
    for class_id in range(4):
        holders = [n for n, row in zip(names, presence) if row[class_id]]
        assert len(holders) >= 3 and {folds[n] for n in holders} == {0, 1, 2}


def test_stats_decode_the_rle_masks(severstal, tmp_path):
    config = _config(severstal, tmp_path)
    result = runner.invoke(app, ["stats", "-c", str(config), "--output", str(tmp_path / "st")])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "st/stats.json").read_text())
    train = split_samples(load_config(config), "train")
    labels = read_rle_csv(severstal / "train.csv")
    grey = [cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE) for s in train]
    masks = np.stack([decode_image_masks(labels.get(s.image.name, {}), SHAPE, 4) for s in train])
    pixels = np.concatenate([g.ravel() for g in grey]) / 255
    assert stats["mean"] == [pytest.approx(pixels.mean(), rel=1e-9)]
    assert stats["std"] == [pytest.approx(pixels.std(), rel=1e-9)]
    assert stats["class_pixels"] == masks.sum(axis=(0, 2, 3)).tolist()
    assert stats["class_images"] == masks.any(axis=(2, 3)).sum(axis=0).tolist()
    empty = int((~masks.any(axis=(1, 2, 3))).sum())
    assert stats["empty_images"] == empty and empty > 0
    assert stats["image_sizes"] == [{"height": SHAPE[0], "width": SHAPE[1], "count": len(train)}]
    assert "defect_3:" in result.output
    assert f"empty masks: {empty / len(train):.1%}" in result.output
    assert (tmp_path / "st/stats.png").stat().st_size > 1000


def test_check_passes_on_clean_rle_data(severstal, tmp_path):
    config = _config(severstal, tmp_path)
    result = runner.invoke(app, ["check", "-c", str(config), "--output", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "train: 0 of" in result.output and "val: 0 of" in result.output


def test_check_reports_a_bad_rle_and_a_corrupt_image(severstal, tmp_path):
    data = _copy(severstal, tmp_path)
    labelled = read_rle_csv(data / "train.csv")
    clean, corrupt = [
        p for p in sorted((data / "train_images").iterdir()) if p.name not in labelled
    ][:2]
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + np.random.default_rng(0).bytes(200))
    with (data / "train.csv").open("a") as handle:
        # 32×96 = 3072 pixels: this run ends past the last one.
        handle.write(f"{clean.name},3,3000 100\n")
    config = _config(severstal, tmp_path, data)
    result = runner.invoke(app, ["check", "-c", str(config), "--output", str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output
    report = "".join(p.read_text() for p in (tmp_path / "rep").glob("validation-*.txt"))
    assert f"ImageId='{clean.name}', ClassId=3" in report and "past the last pixel" in report
    assert f"{corrupt}" in report and "corrupt_image" in report
    # training refuses to start under the default policy, naming a bad file of its first split
    result = runner.invoke(app, ["train", "-c", str(config)])
    assert result.exit_code == 2 and "data validation failed" in result.output
    assert corrupt.name in result.output or f"ImageId='{clean.name}'" in result.output


def test_check_reports_csv_structure_errors_without_crashing(severstal, tmp_path):
    data = _copy(severstal, tmp_path)
    with (data / "train.csv").open("a") as handle:
        handle.write("ghost.jpg,1,1 2\n")
    config = _config(severstal, tmp_path, data)
    result = runner.invoke(app, ["check", "-c", str(config), "--output", str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output
    assert result.output.count("rle_csv: 1") == 1  # both splits read the CSV: printed once
    report = (tmp_path / "rep/validation-train.txt").read_text()
    assert "unknown ImageId 'ghost.jpg'" in report and "row" in report
