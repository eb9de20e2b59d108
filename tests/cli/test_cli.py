"""The CLI: errors exit 2 with the message (no traceback); --set reaches the config."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from podium.cli import app

runner = CliRunner()


def _write(tmp_path, raw) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_bad_key_exits_2_with_path_and_choices(tiny_config, tmp_path):
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, tiny_config),
                                 "--set", "trainer.max_epoch=1"])
    assert result.exit_code == 2
    assert "trainer.max_epoch" in result.output and "max_epochs" in result.output
    assert "Traceback" not in result.output


def test_missing_data_folder_is_named(tiny_config, tmp_path):
    tiny_config["data"]["train"]["images"] = str(tmp_path / "nowhere")
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, tiny_config)])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_lr_sweep_writes_csv_plot_and_suggestion(tiny_config, tmp_path):
    result = runner.invoke(app, ["lr-sweep", "-c", _write(tmp_path, tiny_config), "--num", "3",
                                 "--steps", "2", "--val-batches", "1",
                                 "--output", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "sweep/lr_sweep.csv").read_text().splitlines()
    assert rows[0] == "lr,train_loss,val_loss" and len(rows) == 4
    assert (tmp_path / "sweep/lr_sweep.png").stat().st_size > 1000
    assert "suggested lr" in result.output
