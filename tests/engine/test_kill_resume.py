"""SIGKILL a real training run mid-epoch or mid-checkpoint-write, resume, compare to a clean run.

Every run is a subprocess of tests/engine/kill_target.py (the real `train()` with RngState
appended to its callbacks). The kill point is a marker file the target writes before sleeping,
so nothing depends on timing. One torch thread per process: two runs share the 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_config_dict

TARGET = Path(__file__).with_name("kill_target.py")
WAIT_S = 240.0  # generous: the shared CI cores may be busy


def _config(tmp_path: Path, tiny_data: Path, name: str, workers: int, epochs: int) -> Path:
    raw = tiny_config_dict(tiny_data, tmp_path / name, max_epochs=epochs, deterministic=True)
    raw["data"]["num_workers"] = workers
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(raw))
    return path


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "wb") as handle:
        # Own session: the kill reaches the DataLoader workers too, and nothing else.
        return subprocess.Popen(
            [sys.executable, str(TARGET), *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _finish(proc: subprocess.Popen, log: Path) -> None:
    try:
        rc = proc.wait(timeout=WAIT_S)
    finally:
        _kill(proc)
    assert rc == 0, log.read_text()[-4000:]


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_at_marker(proc: subprocess.Popen, marker: Path, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(
                f"target exited ({proc.returncode}) before the marker:\n" + log.read_text()[-4000:]
            )
        if time.monotonic() > deadline:
            _kill(proc)
            pytest.fail("the target never reached the kill point:\n" + log.read_text()[-4000:])
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _last(output_dir: Path) -> Path:
    (path,) = output_dir.glob("tiny/*/checkpoints/last.ckpt")
    return path


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _history(checkpoint: dict[str, Any]) -> list[dict[str, float]]:
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("MetricsHistory")]
    return checkpoint["callbacks"][key]["rows"]


def _same(a: Any, b: Any) -> bool:
    """Exact equality through dicts, lists and tensors (NaN equals NaN)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _kill_and_resume(tmp_path: Path, config: Path, workers_note: str) -> Path:
    """Kill at epoch 1, batch 1 (epoch 0 checkpointed, one step of epoch 1 done); resume."""
    out = json.loads(config.read_text())["output_dir"]
    marker = tmp_path / f"paused-{workers_note}"
    log = tmp_path / f"killed-{workers_note}.log"
    proc = _start([str(config), "--pause", "1", "1", str(marker)], log)
    _kill_at_marker(proc, marker, log)
    last = _last(Path(out))
    assert _load(last)["epoch"] == 0  # the kill came after epoch 0's checkpoint
    resume_log = tmp_path / f"resumed-{workers_note}.log"
    _finish(_start([str(config), "--resume", str(last)], resume_log), resume_log)
    return last


def _assert_identical(resumed: Path, reference: Path) -> None:
    a, b = _load(resumed), _load(reference)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert _same(a["optimizer_states"], b["optimizer_states"])
    assert _same(_history(a), _history(b))
    assert [row["epoch"] for row in _history(a)] == [0.0, 1.0, 2.0]


def test_resume_after_sigkill_is_bit_exact_with_workers_0(tmp_path, tiny_data):
    ref_config = _config(tmp_path, tiny_data, "reference", workers=0, epochs=3)
    kill_config = _config(tmp_path, tiny_data, "killed", workers=0, epochs=3)
    ref_log = tmp_path / "reference.log"
    reference = _start([str(ref_config)], ref_log)  # runs beside the kill/resume pair
    try:
        last = _kill_and_resume(tmp_path, kill_config, "w0")
    finally:
        _finish(reference, ref_log)
    _assert_identical(last, _last(tmp_path / "reference"))
    # The RNG state travels in plain types: the checkpoint loads without pickled classes.
    torch.load(last, map_location="cpu", weights_only=True)


def test_kill_mid_checkpoint_write_keeps_last_ckpt_and_resume_completes_with_workers_2(
    tmp_path, tiny_data
):
    config = _config(tmp_path, tiny_data, "run", workers=2, epochs=2)
    marker, log = tmp_path / "writing", tmp_path / "run.log"
    proc = _start([str(config), "--slow-save", "2", str(marker)], log)  # epoch 1's last.ckpt
    _kill_at_marker(proc, marker, log)
    last = _last(tmp_path / "run")
    assert _load(last)["epoch"] == 0  # the previous complete file, loadable
    partial = [p for p in last.parent.iterdir() if p.name.startswith(".last.ckpt.")]
    assert partial, sorted(p.name for p in last.parent.iterdir())  # the kill hit mid-write
    assert all(p.name != "last.ckpt" and p.suffix == ".tmp" for p in partial)
    assert partial[0].stat().st_size < last.stat().st_size
    with pytest.raises(Exception):  # noqa: B017 (any unpickling error: the half file is junk)
        _load(partial[0])
    resume_log = tmp_path / "resumed.log"
    _finish(_start([str(config), "--resume", str(last)], resume_log), resume_log)
    checkpoint = _load(last)
    assert checkpoint["epoch"] == 1
    history = _history(checkpoint)
    assert [row["epoch"] for row in history] == [0.0, 1.0]
    assert all(math.isfinite(row["train/loss"]) for row in history)
    rows = (last.parent.parent / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per epoch, none repeated or lost


def test_resume_after_sigkill_is_bit_exact_with_persistent_workers_2(tmp_path, tiny_data):
    # podium's DataLoaders keep their 2 workers alive across epochs; no worker RNG reaches a
    # checkpoint. The sampler's (index, seed) keys reseed the augmentation per sample, so the
    # resumed epoch 1 repeats the uninterrupted one regardless.
    ref_config = _config(tmp_path, tiny_data, "reference", workers=2, epochs=3)
    kill_config = _config(tmp_path, tiny_data, "killed", workers=2, epochs=3)
    ref_log = tmp_path / "reference.log"
    reference = _start([str(ref_config)], ref_log)
    try:
        last = _kill_and_resume(tmp_path, kill_config, "w2")
    finally:
        _finish(reference, ref_log)
    _assert_identical(last, _last(tmp_path / "reference"))


def test_rng_state_round_trips_every_generator():
    """In-process: what state_dict saw is what the draws after load_state_dict repeat."""
    import random

    import numpy as np
    from albumentations import Compose, HorizontalFlip, VerticalFlip
    from torch.utils.data import WeightedRandomSampler

    from podium.engine.rng_state import RngState

    transform = Compose([HorizontalFlip(), VerticalFlip()], seed=1)
    sampler = WeightedRandomSampler([1.0, 2.0], 4, generator=torch.Generator().manual_seed(0))
    datamodule = type(
        "DM", (), {"train_set": type("DS", (), {"transform": transform})(), "sampler": sampler}
    )()
    callback = RngState()
    callback.setup(type("T", (), {"datamodule": datamodule})(), None, "fit")

    def draws():
        return (
            random.random(),
            float(np.random.rand()),
            float(torch.rand(())),
            [t.py_random.random() for t in (transform, *transform.transforms)],
            [float(t.random_generator.random()) for t in (transform, *transform.transforms)],
            list(sampler),
        )

    state = callback.state_dict()
    first = draws()
    callback.load_state_dict(state)
    assert draws() == first
