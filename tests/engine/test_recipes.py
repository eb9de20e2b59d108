"""Seed recipes run end to end at demo scale (tiny images, few epochs, random init)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from podium.config import load_config
from podium.data.synthetic import make_aeroscapes_dataset
from podium.engine.history import read_history
from podium.workflows.fit import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_seed000_recipe_flat_then_revert_then_cosine(tmp_path):
    root = make_aeroscapes_dataset(tmp_path / "aero", n_train=8, n_val=4, size=(64, 64))
    config = load_config(
        CONFIGS / "aeroscapes_seed000.yaml",
        [
            f"data.root={root}",
            f"output_dir={tmp_path / 'runs'}",
            "model.encoder_weights=null",
            "augmentation.train=null",
            "augmentation.val=null",
            "data.batch_size=4",
            "data.num_workers=0",
            "schedule.patience=1",
            "schedule.max_flat_epochs=2",
            "schedule.anneal_epochs=2",
            "trainer.max_epochs=6",
            "trainer.progress_bar=false",
        ],
    )
    assert config.optimizer.name == "ranger" and config.model.arch == "FPN"
    run_dir = train(config)
    history = read_history(run_dir / "metrics.csv")
    lrs = [row[next(k for k in row if k.startswith("lr-"))] for row in history]
    phases = [row["phase"] for row in history]
    # Flat at max LR, then the anneal phase at lower LRs, and the callback stopped the run.
    assert phases[0] == 0 and phases[-1] == 1
    flat = [lr for lr, ph in zip(lrs, phases) if ph == 0]
    assert all(lr == pytest.approx(config.optimizer.lr, rel=1e-6) for lr in flat)
    assert lrs[-1] < config.optimizer.lr
    assert len(history) <= 2 + 2
    assert (run_dir / "checkpoints/best.ckpt").is_file()
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert any("FlatThenCosineWithRevert" in key for key in ckpt["callbacks"])
