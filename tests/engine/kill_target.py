"""A training run for the kill tests to SIGKILL: the real `podium.workflows.fit.train`, plus hooks.

    python kill_target.py CONFIG.json [--resume CKPT] [--pause EPOCH BATCH MARKER]
                          [--slow-save N MARKER]

RngState is appended to fit's callback list (where the lead engineer will put it). --pause
writes MARKER at the start of that batch and then sleeps, so the test kills at a known point
instead of guessing from timings. --slow-save writes only half of the N-th last.ckpt, writes
MARKER and sleeps: a kill in the middle of a checkpoint write.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

import podium.workflows.fit as fit
from podium.config import load_config
from podium.engine.checkpoint_io import AtomicCheckpointIO
from podium.engine.rng_state import RngState

__all__ = ["main"]

_SLEEP_S = 600.0  # longer than any test waits: the test kills us first


def _mark(path: Path) -> None:
    """Create the marker whole (temp + rename), so the test never sees a half-written one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, path)


class PauseAt(pl.Callback):
    """Marks and sleeps at the start of one training batch."""

    def __init__(self, epoch: int, batch: int, marker: Path) -> None:
        self.epoch, self.batch, self.marker = epoch, batch, marker

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            _mark(self.marker)
            time.sleep(_SLEEP_S)


def _add_callbacks(extra: list[pl.Callback]) -> None:
    """Append to the real callback list (which holds RngState), so `train()` runs unchanged."""
    original = fit._callbacks

    def callbacks(config, run_dir):
        built = original(config, run_dir)
        assert any(isinstance(c, RngState) for c in built), "fit must restore RNG state"
        return [*built, *extra]

    fit._callbacks = callbacks


def _slow_last_save(nth: int, marker: Path) -> None:
    """The nth last.ckpt write stops halfway through (the file handle is AtomicCheckpointIO's)."""
    state = {"path": None, "last_writes": 0}
    real_save, real_checkpoint = torch.save, AtomicCheckpointIO.save_checkpoint

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        state["path"] = Path(path)
        return real_checkpoint(self, checkpoint, path, storage_options)

    def save(obj, handle, *args, **kwargs):
        path = state["path"]
        if path is not None and path.name == "last.ckpt" and hasattr(handle, "write"):
            state["last_writes"] += 1
            if state["last_writes"] == nth:
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
                _mark(marker)
                time.sleep(_SLEEP_S)
        return real_save(obj, handle, *args, **kwargs)

    AtomicCheckpointIO.save_checkpoint = save_checkpoint
    torch.save = save


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--resume", type=Path)
    parser.add_argument("--pause", nargs=3, metavar=("EPOCH", "BATCH", "MARKER"))
    parser.add_argument("--slow-save", nargs=2, metavar=("N", "MARKER"))
    args = parser.parse_args(argv)
    extra: list[pl.Callback] = []
    if args.pause:
        extra.append(PauseAt(int(args.pause[0]), int(args.pause[1]), Path(args.pause[2])))
    _add_callbacks(extra)
    if args.slow_save:
        _slow_last_save(int(args.slow_save[0]), Path(args.slow_save[1]))
    config = load_config(raw=json.loads(args.config.read_text()))
    run_dir = fit.train(config, resume=args.resume)
    print(f"RUN_DIR={run_dir}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
