"""k-fold workflow from the CLI: split → train --fold all → OOF covering every image once."""

from __future__ import annotations

import json

import numpy as np
import yaml
from typer.testing import CliRunner

from podium.cli import app
from podium.data.folds import read_folds_csv

runner = CliRunner()


def _config(tiny_config, tmp_path, **folds) -> str:
    tiny_config["data"]["folds"] = {"csv": str(tmp_path / "folds.csv"), "n_splits": 2, **folds}
    tiny_config["trainer"]["max_epochs"] = 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    return str(path)


def test_split_then_all_folds_write_oof_for_every_image_once(tiny_config, tiny_data, tmp_path):
    config = _config(tiny_config, tmp_path, method="stratified")
    result = runner.invoke(app, ["split", "-c", config])
    assert result.exit_code == 0, result.output
    folds = read_folds_csv(tmp_path / "folds.csv")
    names = sorted(p.stem for p in (tiny_data / "train/images").iterdir())
    assert sorted(folds) == names and set(folds.values()) == {0, 1}
    result = runner.invoke(app, ["train", "-c", config, "--fold", "all"])
    assert result.exit_code == 0, result.output
    assert result.output.count("run folder:") == 2
    oof = tmp_path / "runs" / "tiny" / "oof"
    assert sorted(p.stem for p in oof.glob("*.npz")) == names  # each image once
    probs = np.load(oof / f"{names[0]}.npz")["mask"]
    assert probs.shape == (3, 64, 64)


def test_group_split_keeps_groups_together(tiny_config, tmp_path):
    config = _config(tiny_config, tmp_path, method="group", group_regex=r"(\d)$")
    result = runner.invoke(app, ["split", "-c", config])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "folds.csv").read_text().splitlines()[1:]
    by_group: dict[str, set] = {}
    for line in lines:
        _, fold, group = line.split(",")
        by_group.setdefault(group, set()).add(fold)
    assert all(len(f) == 1 for f in by_group.values())


def test_fold_without_split_says_run_split(tiny_config, tmp_path):
    config = _config(tiny_config, tmp_path)
    result = runner.invoke(app, ["train", "-c", config, "--fold", "0"])
    assert result.exit_code == 2 and "podium split" in result.output


def test_stats_json_plot_and_stats_file_normalization(tiny_config, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    result = runner.invoke(app, ["stats", "-c", str(path), "--output", str(tmp_path / "st")])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "st/stats.json").read_text())
    assert len(stats["mean"]) == 3 and (tmp_path / "st/stats.png").stat().st_size > 1000
    from podium.config import load_config

    tiny_config["data"]["stats_file"] = str(tmp_path / "st/stats.json")
    assert load_config(raw=tiny_config).data.mean == tuple(stats["mean"])
