"""Recipe switches that need the engine: init from a previous run + freezing, LR sweep on the
demo data, and the training benchmark at CPU scale (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from podium.build import apply_init, build_module
from podium.config import load_config
from podium.data.demo import build_demo_dataset
from podium.optim import encoder_stages
from podium.workflows.demo import demo_config
from podium.workflows.fit import train
from podium.workflows.lr_sweep import lr_sweep

ROOT = Path(__file__).resolve().parents[2]


def test_init_from_previous_run_with_frozen_encoder_but_last_stage(tiny_config, tmp_path):
    first = train(load_config(raw=tiny_config, overrides=["trainer.max_epochs=1"]))
    ckpt = first / "checkpoints/last.ckpt"
    config = load_config(
        raw=tiny_config,
        overrides=[
            f"init.weights={ckpt}",
            "init.freeze_encoder=true",
            "init.unfreeze_last_stages=1",
        ],
    )
    module = build_module(config)
    apply_init(config, module.model)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in module.model.state_dict().items():
        assert torch.equal(value, saved[f"model.{key}"]), key
    stages = encoder_stages(module.model.encoder)
    last = {n for n in stages[-1]}
    for name, param in module.model.encoder.named_parameters():
        owner = name.rsplit(".", 1)[0]
        assert param.requires_grad == any(owner == m or owner.startswith(m + ".") for m in last)
    assert all(p.requires_grad for p in module.model.decoder.parameters())
    # Starting from that run's optimizer state too (seed 004 v9) builds and steps.
    config = load_config(
        raw=tiny_config,
        overrides=[f"init.weights={ckpt}", "init.optimizer_state=true", "trainer.max_epochs=1"],
    )
    assert (train(config) / "checkpoints/last.ckpt").is_file()


def test_lr_sweep_on_the_demo_data_writes_plot_and_suggestion(tmp_path):
    dataset = build_demo_dataset(tmp_path / "cache")
    raw = demo_config(dataset.root, tmp_path / "runs")
    config = load_config(raw=raw, overrides=["data.num_workers=0", "data.batch_size=8"])
    points, suggestion = lr_sweep(
        config, tmp_path / "sweep", 1e-4, 1e-1, num=3, steps=2, val_batches=1
    )
    assert [round(p.lr, 6) for p in points] == [0.0001, 0.003162, 0.1]
    assert suggestion in [p.lr for p in points]
    assert (tmp_path / "sweep/lr_sweep.png").stat().st_size > 1000
    assert (tmp_path / "sweep/lr_sweep.csv").read_text().count("\n") == 4


def test_training_benchmark_runs_at_cpu_scale(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/bench_train.py"),
            "--device",
            "cpu",
            "--size",
            "64",
            "--batch",
            "4",
            "--images",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--workers",
            "0",
            "--encoder",
            "resnet18",
            "--data",
            str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio (2)/(3) hand-written" in result.stdout
    # The speed switches' rows: RAM cache, then cache + device-side augmentation.
    for row in ("(2a) podium + data.cache: ram", "(2b) podium + cache + augmentation.device"):
        assert row in result.stdout
    assert "ratio (2b)/(3) hand-written" in result.stdout
    assert "ratio (2b)/(2) podium default" in result.stdout
    # The breakdown: podium's step alone on a replayed batch, per-stage loader costs, a verdict.
    assert "podium step alone (replayed batch)" in result.stdout
    for stage in ("decode", "augment", "item", "collate"):
        assert re.search(rf"^  {stage} +\d+\.\d+ ms$", result.stdout, re.M), stage
    assert re.search(r"^bound: the (data path|training step) ", result.stdout, re.M)
