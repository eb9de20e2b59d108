"""A tiny CPU run through train → evaluate → predict, and resume continuing the history."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from podium.build.checkpoint import config_from_checkpoint, inference_options, load_module
from podium.config import load_config
from podium.engine.history import read_history
from podium.inference.pipeline import Predictor
from podium.workflows.evaluate import evaluate
from podium.workflows.fit import train
from podium.workflows.predict import predict_folder


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory):
    from conftest import tiny_config_dict

    config = load_config(
        raw=tiny_config_dict(tiny_data, tmp_path_factory.mktemp("runs"), max_epochs=3)
    )
    return config, train(config)


def test_run_folder_holds_everything_needed_to_reproduce(trained_run):
    config, run_dir = trained_run
    for name in (
        "config.yaml",
        "environment.json",
        "metrics.csv",
        "curves.png",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ):
        assert (run_dir / name).is_file(), name
    assert load_config(run_dir / "config.yaml") == config
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["packages"]["torch"] == torch.__version__.split("+")[0]
    history = read_history(run_dir / "metrics.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert all(np.isfinite(row["val/loss"]) and "val/mask/iou" in row for row in history)
    # Training on learnable data lowers the loss.
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert any(key.startswith("lr-") for key in history[0])
    assert list((run_dir / "logs/csv").glob("*/metrics.csv"))
    assert any((run_dir / "logs/tensorboard").iterdir())


def test_checkpoint_carries_config_and_best_is_best(trained_run):
    config, run_dir = trained_run
    assert config_from_checkpoint(run_dir / "checkpoints/best.ckpt") == config
    history = read_history(run_dir / "metrics.csv")
    best_epoch = int(max(history, key=lambda r: r["val/mask/iou"])["epoch"])
    ckpt = torch.load(run_dir / "checkpoints/best.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == best_epoch


def test_evaluate_writes_report_matching_training_metric(trained_run, tmp_path):
    config, run_dir = trained_run
    cfg, module = load_module(run_dir / "checkpoints/best.ckpt")
    result = evaluate(cfg, module, tmp_path / "eval")
    for name in ("metrics.json", "per_class.csv", "confusion_matrix.png", "best_worst.png"):
        assert (tmp_path / "eval" / name).is_file(), name
    history = read_history(run_dir / "metrics.csv")
    best = max(r["val/mask/iou"] for r in history)
    # Same images, same weights: our confusion-matrix mIoU equals torchmetrics' epoch value.
    assert result.miou == pytest.approx(best, abs=1e-4)
    assert result.confusion.sum() == 6 * 64 * 64 and result.ms_per_image > 0


def test_predict_writes_masks_overlays_and_skips_bad_images(trained_run, tiny_data, tmp_path):
    _, run_dir = trained_run
    cfg, module = load_module(run_dir / "checkpoints/best.ckpt")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted((tiny_data / "val/images").iterdir())[:2]:
        (inputs / path.name).write_bytes(path.read_bytes())
    # An odd size (needs padding to the stride) and a broken file.
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(inputs / "odd.png")
    (inputs / "broken.jpg").write_bytes(b"garbage")
    summary = predict_folder(
        cfg, Predictor([module], inference_options(cfg)), inputs, tmp_path / "out"
    )
    assert summary.written == 3 and len(summary.skipped) == 1 and "broken.jpg" in summary.skipped[0]
    odd = np.asarray(Image.open(tmp_path / "out/masks/odd.png"))
    assert odd.shape == (50, 70) and odd.max() < 3
    assert (tmp_path / "out/overlays/odd.png").is_file()


def test_resume_continues_epochs_and_history(tiny_data, tmp_path):
    from conftest import tiny_config_dict

    raw = tiny_config_dict(tiny_data, tmp_path / "runs", max_epochs=2)
    run_dir = train(load_config(raw=raw))
    before = read_history(run_dir / "metrics.csv")
    last = run_dir / "checkpoints/last.ckpt"
    step_before = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    resumed = train(load_config(raw=raw, overrides=["trainer.max_epochs=3"]), resume=last)
    assert resumed == run_dir
    after = read_history(run_dir / "metrics.csv")
    assert [r["epoch"] for r in after] == [0, 1, 2]
    for old, new in zip(before, after[:2]):
        diff = {
            k: (old.get(k), new.get(k))
            for k in old.keys() | new.keys()
            if not _same(old.get(k), new.get(k))
        }
        assert not diff, diff
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == step_before * 3 // 2


def _same(a, b) -> bool:
    """Equal, counting NaN == NaN (an undefined metric stays undefined)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))


def test_resume_from_missing_checkpoint_fails_loudly(tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(load_config(raw=tiny_config), resume=tmp_path / "nope.ckpt")


def test_compiled_model_trains_and_checkpoints_plain_keys(tiny_config, monkeypatch):
    """trainer.compile wraps the model without renaming checkpoint keys (eager backend: fast)."""
    import functools

    from podium.build import build_module

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    config = load_config(raw=tiny_config, overrides=["trainer.compile=true"])
    module = build_module(config)
    module.setup("fit")
    assert module._compiled is not None
    out = module(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert out["mask"].shape == (2, 3, 64, 64)
    assert not any("_orig_mod" in key for key in module.state_dict())


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(tiny_data, tmp_path):
    """Lightning refreshes save_last only on improvement; our last.ckpt must not lag."""
    from conftest import tiny_config_dict

    raw = tiny_config_dict(tiny_data, tmp_path / "runs", max_epochs=2)
    # save_top_k 0: no "best" is ever saved, the case where Lightning's save_last never writes.
    run_dir = train(load_config(raw=raw, overrides=["trainer.save_top_k=0"]))
    last = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1
    assert not (run_dir / "checkpoints/best.ckpt").exists()


def test_compile_failure_falls_back_to_eager(tiny_config, monkeypatch):
    from podium.build import build_module

    def broken_compile(model, **kwargs):
        def run(x):
            raise RuntimeError("inductor: no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    module = build_module(load_config(raw=tiny_config, overrides=["trainer.compile=true"]))
    module.setup("fit")
    with pytest.warns(UserWarning, match="continuing without compilation"):
        out = module(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert out["mask"].shape == (1, 3, 64, 64) and module._compiled is None
