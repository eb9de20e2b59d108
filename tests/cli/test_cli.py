"""The CLI: errors exit 2 with the message (no traceback); --set reaches the config."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from podium.cli import app

runner = CliRunner()


def _write(tmp_path, raw) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_bad_key_exits_2_with_path_and_choices(tiny_config, tmp_path):
    result = runner.invoke(
        app, ["train", "-c", _write(tmp_path, tiny_config), "--set", "trainer.max_epoch=1"]
    )
    assert result.exit_code == 2
    assert "trainer.max_epoch" in result.output and "max_epochs" in result.output
    assert "Traceback" not in result.output


def test_missing_data_folder_is_named(tiny_config, tmp_path):
    tiny_config["data"]["train"]["images"] = str(tmp_path / "nowhere")
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, tiny_config)])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_lr_sweep_writes_csv_plot_and_suggestion(tiny_config, tmp_path):
    result = runner.invoke(
        app,
        [
            "lr-sweep",
            "-c",
            _write(tmp_path, tiny_config),
            "--num",
            "3",
            "--steps",
            "2",
            "--val-batches",
            "1",
            "--output",
            str(tmp_path / "sweep"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "sweep/lr_sweep.csv").read_text().splitlines()
    assert rows[0] == "lr,train_loss,val_loss" and len(rows) == 4
    assert (tmp_path / "sweep/lr_sweep.png").stat().st_size > 1000
    assert "suggested lr" in result.output


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    from conftest import tiny_config_dict

    from podium.config import load_config
    from podium.workflows.fit import train

    out = tmp_path_factory.mktemp("cli_runs")
    return train(load_config(raw=tiny_config_dict(tiny_data, out, max_epochs=1)))


def test_predict_ensemble_tta_tiles_probabilities(trained, tiny_data, tmp_path):
    ckpts = [
        "--ckpt",
        str(trained / "checkpoints/best.ckpt"),
        "--ckpt",
        str(trained / "checkpoints/last.ckpt"),
    ]
    result = runner.invoke(
        app,
        [
            "predict",
            *ckpts,
            "--input",
            str(tiny_data / "val/images"),
            "--output",
            str(tmp_path / "out"),
            "--tta",
            "d4",
            "--tile",
            "32",
            "--overlap",
            "0.5",
            "--save-probs",
        ],
    )
    assert result.exit_code == 0, result.output
    stems = sorted(p.stem for p in (tiny_data / "val/images").iterdir())
    assert sorted(p.stem for p in (tmp_path / "out/masks").iterdir()) == stems
    probs = np.load(tmp_path / "out/probabilities" / f"{stems[0]}.npz")["mask"]
    assert probs.dtype == np.float16 and probs.shape == (3, 64, 64)
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)
    timings = (tmp_path / "out/timings.csv").read_text().splitlines()
    assert timings[0].startswith("image,") and len(timings) == len(stems) + 1


def test_evaluate_with_tta_writes_report(trained, tmp_path):
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--ckpt",
            str(trained / "checkpoints/best.ckpt"),
            "--tta",
            "hflip",
            "--output",
            str(tmp_path / "eval"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and (tmp_path / "eval/metrics.json").is_file()


def test_predict_missing_checkpoint_exits_2(tmp_path):
    result = runner.invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(tmp_path / "x.ckpt"),
            "--input",
            str(tmp_path),
            "--output",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_check_reports_a_truncated_image_and_exits_1(tiny_config, tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    victim = sorted((data / "train/images").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    tiny_config["data"]["train"] = {
        "images": str(data / "train/images"),
        "masks": str(data / "train/masks"),
    }
    result = runner.invoke(
        app, ["check", "-c", _write(tmp_path, tiny_config), "--output", str(tmp_path / "reports")]
    )
    assert result.exit_code == 1, result.output
    assert victim.name in (tmp_path / "reports/validation-train.txt").read_text()
    # train refuses to start under the default policy, naming the file
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, tiny_config)])
    assert result.exit_code == 2 and victim.name in result.output


def test_resume_auto_without_a_run_fails_loudly(tiny_config, tmp_path):
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, tiny_config), "--resume", "auto"])
    assert result.exit_code == 2 and "no run of experiment" in result.output


def test_resume_auto_continues_the_newest_run(trained, tiny_data, tmp_path):
    import shutil

    from conftest import tiny_config_dict

    out = tmp_path / "runs"
    shutil.copytree(trained, out / "tiny" / trained.name)
    raw = tiny_config_dict(tiny_data, out, max_epochs=2)
    result = runner.invoke(app, ["train", "-c", _write(tmp_path, raw), "--resume", "auto"])
    assert result.exit_code == 0, result.output
    assert f"run folder: {out / 'tiny' / trained.name}" in result.output


def test_check_warns_about_near_duplicates_across_train_and_val(tiny_config, tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    first = sorted((data / "train/images").iterdir())[0]
    shutil.copy(first, data / "val/images" / "copy.png")
    shutil.copy(data / "train/masks" / first.name, data / "val/masks" / "copy.png")
    for split in ("train", "val"):
        tiny_config["data"][split] = {
            "images": str(data / split / "images"),
            "masks": str(data / split / "masks"),
        }
    result = runner.invoke(
        app, ["check", "-c", _write(tmp_path, tiny_config), "--output", str(tmp_path / "rep")]
    )
    assert result.exit_code == 0, result.output
    assert f"{first.stem} ~ copy" in result.output


def test_every_command_shares_the_one_error_handler():
    callbacks = [c.callback for c in app.registered_commands]
    assert len(callbacks) >= 10
    assert all(hasattr(cb, "__wrapped__") for cb in callbacks), "register commands with @command()"


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--set", "model.arch=Unett"],  # a config error
        ["lr-sweep", "-c", "/nonexistent.yaml"],  # a missing file
        ["predict", "--ckpt", "/nonexistent.ckpt", "--input", ".", "--output", "/tmp/x"],
    ],
)
def test_user_errors_exit_2_with_one_red_line_and_no_traceback(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
