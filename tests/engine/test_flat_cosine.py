"""Flat -> revert to best -> cosine: exact revert, LR shape, logging, stop, state round trip."""

from __future__ import annotations

import copy
import csv
import io
import math
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from podium.engine.flat_cosine import FlatThenCosineWithRevert
from podium.optim import build_optimizer

# Best at epoch 2, then two worse epochs: patience 2 switches after epoch 4's validation.
SCORES = [1.0, 0.8, 0.5, 0.6, 0.7] + [9.0] * 20
BEST, SWITCH, ANNEAL, BATCHES = 2, 4, 3, 4
LR, ENCODER_LR, MIN_LR = 0.05, 0.005, 5e-4


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.decoder = nn.Linear(8, 8)
        self.heads = nn.ModuleDict({"y": nn.Linear(8, 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads["y"](self.decoder(self.encoder(x)))


class Module(pl.LightningModule):
    """Regression on random data; the monitored score is a scripted sequence."""

    def __init__(self, **optimizer: object) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = Net()
        self.optimizer = optimizer

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("val/score", SCORES[self.current_epoch])

    def configure_optimizers(self):
        return build_optimizer(
            self.model,
            lr=LR,
            weight_decay=0.01,
            lr_groups={"encoder": ENCODER_LR},
            **({"name": "adamw"} | self.optimizer),
        )


class Recorder(pl.Callback):
    """Runs after the callback under test: LRs per batch, weights/optimizer after validation."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []
        self.weights: dict[int, dict] = {}
        self.optim: dict[int, dict] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    def on_validation_end(self, trainer, pl_module):
        self.weights[trainer.current_epoch] = copy.deepcopy(pl_module.model.state_dict())
        self.optim[trainer.current_epoch] = copy.deepcopy(trainer.optimizers[0].state_dict())


def loaders() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g))
    return DataLoader(data, batch_size=BATCHES), DataLoader(data, batch_size=16)


def fit(
    tmp_path,
    callback: FlatThenCosineWithRevert,
    max_epochs: int = 30,
    ckpt_path: str | None = None,
    accelerator: str = "cpu",
    module: pl.LightningModule | None = None,
) -> tuple[pl.Trainer, Recorder]:
    recorder = Recorder()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        log_every_n_steps=1,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[callback, recorder, checkpoint],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    train, val = loaders()
    trainer.fit(module or Module(), train, val, ckpt_path=ckpt_path)
    return trainer, recorder


def make_callback() -> FlatThenCosineWithRevert:
    return FlatThenCosineWithRevert(
        patience=2,
        max_flat_epochs=10,
        anneal_epochs=ANNEAL,
        min_lr=MIN_LR,
        monitor="val/score",
        mode="min",
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    callback = make_callback()
    trainer, recorder = fit(tmp_path_factory.mktemp("flat_cosine"), callback)
    return callback, trainer, recorder


def test_switch_reverts_weights_and_optimizer_bit_exactly_to_the_best_epoch(run):
    callback, trainer, recorder = run
    assert (callback.phase, callback.best, callback.best_epoch) == ("anneal", 0.5, BEST)
    for key, value in recorder.weights[BEST].items():  # BatchNorm buffers included
        assert torch.equal(recorder.weights[SWITCH][key], value), key
    assert not torch.equal(
        recorder.weights[SWITCH - 1]["decoder.weight"], recorder.weights[BEST]["decoder.weight"]
    )  # training did move them
    best, reverted = recorder.optim[BEST]["state"], recorder.optim[SWITCH]["state"]
    for index, state in best.items():
        for key, value in state.items():
            assert torch.equal(reverted[index][key], value), (index, key)


def test_lr_is_flat_max_then_cosine_to_min_lr_then_the_run_stops(run):
    callback, trainer, recorder = run
    max_lrs = callback.max_lrs
    assert sorted(set(max_lrs)) == [ENCODER_LR, LR]
    flat = recorder.lrs[: (SWITCH + 1) * BATCHES]
    assert all(lrs == max_lrs for lrs in flat)
    anneal = recorder.lrs[(SWITCH + 1) * BATCHES :]
    total = ANNEAL * BATCHES
    assert len(anneal) == total and trainer.current_epoch == SWITCH + 1 + ANNEAL
    ratio = MIN_LR / LR
    for step, lrs in enumerate(anneal, start=1):
        factor = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * step / total))
        assert lrs == pytest.approx([m * factor for m in max_lrs], rel=1e-12)
    assert anneal[-1][max_lrs.index(LR)] == pytest.approx(MIN_LR, rel=1e-12)


def test_phase_and_group_lrs_are_logged_every_epoch(run):
    _, trainer, _ = run
    with open(f"{trainer.logger.log_dir}/metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("phase")]
    assert [float(r["phase"]) for r in rows] == [0.0] * (SWITCH + 1) + [1.0] * ANNEAL
    lr = {name: [float(r[f"lr-{name}"]) for r in rows] for name in ("encoder", "decoder")}
    assert lr["encoder"][0] == pytest.approx(ENCODER_LR, rel=1e-6)  # logged as float32
    assert lr["decoder"][: SWITCH + 1] == pytest.approx([LR] * (SWITCH + 1), rel=1e-6)
    assert lr["decoder"][-1] == pytest.approx(MIN_LR, rel=1e-6)


def test_state_survives_a_round_trip_through_a_checkpoint_file(run):
    callback, _, _ = run
    buffer = io.BytesIO()
    torch.save(callback.state_dict(), buffer)
    buffer.seek(0)
    restored = make_callback()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.state_key == callback.state_key
    for key, value in callback.state_dict().items():
        if key == "best_model":
            assert all(torch.equal(restored.best_model[k], v) for k, v in value.items())
        else:
            assert getattr(restored, key) == value, key


def test_restored_callback_resumes_the_anneal_where_it_was(run):
    callback, trainer, _ = run
    state = callback.state_dict() | {"anneal_step": 5}
    restored = make_callback()
    restored.load_state_dict(state)
    restored.on_train_start(trainer, None)
    restored.on_train_batch_start(trainer, None, None, 0)
    ratio = MIN_LR / LR
    factor = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * 6 / (ANNEAL * BATCHES)))
    optimizer = trainer.optimizers[0]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [m * factor for m in callback.max_lrs], rel=1e-12
    )


def test_flat_phase_state_round_trip_keeps_the_best_snapshot():
    callback = make_callback()
    callback.best, callback.bad_epochs, callback.flat_epochs = 0.3, 1, 4
    callback.best_model = {"w": torch.arange(3.0)}
    callback.best_optimizer = {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": []}
    restored = make_callback()
    restored.load_state_dict(copy.deepcopy(callback.state_dict()))
    assert (restored.phase, restored.best, restored.bad_epochs, restored.flat_epochs) == (
        "flat",
        0.3,
        1,
        4,
    )
    assert torch.equal(restored.best_optimizer["state"][0]["exp_avg"], torch.ones(2))


@pytest.mark.filterwarnings("ignore:max_epochs=3 may end the run")
def test_resumed_run_continues_flat_and_reverts_to_the_checkpointed_best(tmp_path):
    fit(tmp_path / "first", make_callback(), max_epochs=BEST + 1)  # ends flat, after the best
    last = tmp_path / "first" / "ckpt" / "last.ckpt"
    best = {k.removeprefix("model."): v for k, v in torch.load(last)["state_dict"].items()}
    callback = make_callback()
    trainer, recorder = fit(tmp_path / "resumed", callback, ckpt_path=str(last))
    assert callback.best_epoch == BEST and sorted(recorder.weights) == list(range(BEST + 1, 8))
    for key, value in best.items():
        assert torch.equal(recorder.weights[SWITCH][key], value), key
    assert trainer.current_epoch == SWITCH + 1 + ANNEAL
    assert all(lrs == callback.max_lrs for lrs in recorder.lrs[: (SWITCH - BEST) * BATCHES])
    assert recorder.lrs[-1][callback.max_lrs.index(LR)] == pytest.approx(MIN_LR, rel=1e-12)


def test_max_flat_epochs_switches_even_while_improving():
    net = Net()
    optimizer = build_optimizer(net, "sgd", lr=LR)
    trainer = SimpleNamespace(
        sanity_checking=False,
        callback_metrics={},
        current_epoch=0,
        optimizers=[optimizer],
        num_training_batches=BATCHES,
        max_epochs=9,
    )
    callback = FlatThenCosineWithRevert(
        patience=5, max_flat_epochs=3, anneal_epochs=1, monitor="val/score", mode="max"
    )
    callback.on_train_start(trainer, SimpleNamespace(model=net))
    for epoch, score in enumerate([0.1, 0.2, 0.3]):
        trainer.current_epoch, trainer.callback_metrics = epoch, {"val/score": torch.tensor(score)}
        callback.on_validation_end(trainer, SimpleNamespace(model=net))
    assert (callback.phase, callback.best_epoch, callback.anneal_steps) == ("anneal", 2, BATCHES)
    assert callback.best == pytest.approx(0.3)


def test_missing_monitor_names_what_was_logged():
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/loss": 1.0})
    with pytest.raises(RuntimeError, match="'val/score' was not logged; logged: val/loss"):
        make_callback().on_validation_end(trainer, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["adamw", "ranger"])
def test_exact_revert_on_cuda_with_fused_or_lookahead_state(tmp_path, name):
    callback = make_callback()
    options = {"name": name} | ({"lookahead": {"k": 3}} if name == "adamw" else {})
    trainer, recorder = fit(tmp_path, callback, accelerator="cuda", module=Module(**options))
    optimizer = trainer.optimizers[0]
    assert bool(getattr(optimizer, "optimizer", optimizer).defaults.get("fused")) is (
        name == "adamw"
    )
    for key, value in recorder.weights[BEST].items():
        assert value.is_cuda and torch.equal(recorder.weights[SWITCH][key], value), key
    best, reverted = recorder.optim[BEST], recorder.optim[SWITCH]
    assert str(best) == str(reverted)  # same structure, and tensors compared below
    flat = [torch.utils._pytree.tree_leaves(s) for s in (best, reverted)]
    for a, b in zip(*flat, strict=True):
        assert not isinstance(a, torch.Tensor) or torch.equal(a.cpu(), b.cpu())
    assert trainer.current_epoch == SWITCH + 1 + ANNEAL
