"""NonFiniteGuard: a NaN loss on one file stops the run, naming it, or is skipped."""

from __future__ import annotations

import re

import lightning.pytorch as pl
import pytest
import torch
from conftest import tiny_config_dict

import podium.workflows.fit as fit
from podium.config import load_config
from podium.engine.guards import (
    NonFiniteGuard,
    NonFiniteLossError,
    batch_names,
    warn_large_targets,
)
from podium.engine.module import PodiumModule

BAD = "sample_0005"  # a training image of the tiny dataset


def _poison(monkeypatch, epochs: set[int]) -> None:
    """The loss of every training batch holding BAD, in these epochs, becomes NaN."""
    real = PodiumModule._losses

    def losses(self, outputs, batch):
        total, logs = real(self, outputs, batch)
        if self.training and self.current_epoch in epochs and BAD in batch["name"]:
            total = total * float("nan")
        return total, logs

    monkeypatch.setattr(PodiumModule, "_losses", losses)


def _with_callbacks(monkeypatch, *extra: pl.Callback) -> None:
    real = fit._callbacks
    # Replace fit's own guard with the one under test (and keep everything else).
    monkeypatch.setattr(
        fit,
        "_callbacks",
        lambda config, run_dir: [
            *(c for c in real(config, run_dir) if not isinstance(c, NonFiniteGuard)),
            *extra,
        ],
    )


class WatchBadStep(pl.Callback):
    """Records whether the parameters changed across each batch holding BAD."""

    def __init__(self) -> None:
        self.unchanged: list[bool] = []
        self._before: dict[str, torch.Tensor] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._before = None
        if BAD in batch["name"]:
            self._before = {k: p.detach().clone() for k, p in pl_module.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._before is not None:
            after = dict(pl_module.named_parameters())
            self.unchanged.append(all(torch.equal(v, after[k]) for k, v in self._before.items()))


def test_nan_loss_raises_at_once_naming_step_and_file(tiny_data, tmp_path, monkeypatch):
    _poison(monkeypatch, epochs={0})
    _with_callbacks(monkeypatch, NonFiniteGuard())
    config = load_config(raw=tiny_config_dict(tiny_data, tmp_path / "runs", max_epochs=1))
    with pytest.raises(NonFiniteLossError) as error:
        fit.train(config)
    message = str(error.value)
    assert BAD in message and "global step" in message and "epoch 0" in message
    assert "No checkpoint has been written yet" in message


def test_max_skips_drops_the_step_then_raises_naming_the_checkpoint(
    tiny_data, tmp_path, monkeypatch
):
    _poison(monkeypatch, epochs={0, 1})
    guard, watch = NonFiniteGuard(max_skips=1), WatchBadStep()
    _with_callbacks(monkeypatch, guard, watch)
    config = load_config(raw=tiny_config_dict(tiny_data, tmp_path / "runs", max_epochs=2))
    # Epoch 0's poisoned step is skipped; epoch 1's raises: the one allowed skip is spent.
    with (
        pytest.warns(UserWarning, match="skipping that step"),
        pytest.raises(NonFiniteLossError) as error,
    ):
        fit.train(config)
    assert len(guard.skipped) == 1 and BAD in guard.skipped[0]["names"]
    assert watch.unchanged[0]  # the poisoned step of epoch 0 changed no weight
    message = str(error.value)
    assert BAD in message and "epoch 1" in message
    # Where to resume from: the newest checkpoint, written at the end of epoch 0.
    named = re.search(r"Last good checkpoint: (\S+) \(resume with --resume \1\)", message)
    assert named and named.group(1).startswith(str(tmp_path / "runs"))
    checkpoint = torch.load(named.group(1), map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 3  # 3 batches, 1 skipped
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    # AdamW counted only the two real steps: a dropped step leaves no trace in its state.
    steps = {float(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()}
    assert steps == {2.0}


def test_guard_rejects_negative_skips():
    with pytest.raises(ValueError):
        NonFiniteGuard(max_skips=-1)


def test_batch_names():
    assert batch_names({"name": ["a", "b"]}) == ["a", "b"]
    assert batch_names({"name": "a"}) == ["a"]
    assert batch_names({"image": torch.zeros(1)}) == [] and batch_names([1, 2]) == []


def test_warn_large_targets():
    assert warn_large_targets(5e3, "16-mixed") is None
    assert warn_large_targets(2e5, "32-true") is None
    message = warn_large_targets(2e5, "16-mixed")
    assert "65504" in message and "1e+06" in message
    assert "precision" in warn_large_targets(3e4, "bf16-mixed")
    assert warn_large_targets(float("inf"), "16-mixed") is None
