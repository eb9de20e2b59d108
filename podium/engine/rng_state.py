"""Random number generator state saved in every checkpoint, so a resumed run continues exactly.

What decides the rest of a run after a checkpoint, besides weights and optimizer:

* the training data order and augmentation: podium's training samplers (podium.data.sample_keys)
  derive both from (config seed, epoch) alone and hand each item an (index, seed) key that
  reseeds the augmentation just before it runs, in whichever process. Nothing of theirs is
  saved here; only the epoch a resume starts at, which PodiumDataModule keeps in its own
  checkpoint state. A resume is then exact with any num_workers, persistent workers included;
* the torch CUDA and CPU RNGs (dropout and other random ops), Python `random`, NumPy's global
  RNG (user code). podium's DataLoaders draw their workers' base seeds from a generator of
  their own, so creating an iterator (once per run with persistent workers, hence once more
  in a resumed run) does not move the torch RNG;
* only for a DataModule given a sampler of plain indices: the training augmentation's own
  generators when it runs in the main process (num_workers 0), since albumentations 2.x keeps
  private RNGs in each Compose and transform, and a sampler's own torch.Generator (e.g. a
  WeightedRandomSampler seeded once at build time). Workers' generators live in the worker
  processes, where no checkpoint sees them: such a run resumes exactly only with num_workers 0.

The keys reseed the albumentations pipeline only: random draws in workers outside it (a custom
dataset or transform using NumPy's or Python's global RNG) still carry over from epoch to
epoch in persistent workers, unseen by any checkpoint.

Callback states are restored by Lightning after `seed_everything` and the `setup` hooks and
before the fit loop creates the epoch's DataLoader iterator, so restoring in `load_state_dict`
is neither overwritten nor too late.
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["RngState", "capture_global_rng", "restore_global_rng"]


def capture_global_rng() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (when present) every CUDA device's RNG state.

    Only tensors, ints, floats, strings and lists: the checkpoint stays loadable with
    `torch.load(weights_only=True)`.
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    """Set the global RNGs captured by `capture_global_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        # A resume on fewer GPUs restores those it has; the others' streams were unused here.
        for device, device_state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)


def _transform_rngs(transform: Any) -> list[tuple[np.random.Generator, random.Random]]:
    """The distinct (numpy, python) generator pairs in an albumentations pipeline, in order."""
    found: dict[int, tuple[np.random.Generator, random.Random]] = {}
    stack = [transform]
    while stack:
        node = stack.pop(0)
        if node is None:
            continue
        rng, py = getattr(node, "random_generator", None), getattr(node, "py_random", None)
        if isinstance(rng, np.random.Generator) and isinstance(py, random.Random):
            found.setdefault(id(rng), (rng, py))
        stack.extend(getattr(node, "transforms", None) or [])
    return list(found.values())


def _capture_transform(transform: Any) -> list[dict[str, Any]]:
    states = []
    for rng, py in _transform_rngs(transform):
        version, internal, gauss = py.getstate()
        states.append(
            {"numpy": rng.bit_generator.state, "python": [version, list(internal), gauss]}
        )
    return states


def _restore_transform(transform: Any, states: list[dict[str, Any]]) -> None:
    rngs = _transform_rngs(transform)
    if len(rngs) != len(states):
        # Still a valid resume, only not an exact one: say so rather than refuse to train.
        rank_zero_warn(
            f"the training augmentation has {len(rngs)} random generators but the checkpoint "
            f"saved {len(states)} (data.augmentation changed?): its random state is not "
            "restored, so the resumed run will not repeat an uninterrupted one exactly"
        )
        return
    for (rng, py), state in zip(rngs, states):
        rng.bit_generator.state = state["numpy"]
        version, internal, gauss = state["python"]
        py.setstate((version, tuple(internal), gauss))


class RngState(pl.Callback):
    """Saves the RNGs with each checkpoint and restores them on resume, for exact continuation."""

    def __init__(self) -> None:
        self._transform: Any = None
        self._generators: dict[str, torch.Generator] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Runs before Lightning restores callback states: find what load_state_dict must set.
        if stage != "fit":
            return
        datamodule = getattr(trainer, "datamodule", None)
        transform = getattr(getattr(datamodule, "train_set", None), "transform", None)
        if getattr(datamodule, "seeded_keys", False):
            transform = None  # reseeded per item from the sampler's keys: nothing to carry over
        self._transform = transform if _transform_rngs(transform) else None
        self._generators = {}
        for name in ("sampler", "batch_sampler"):
            generator = getattr(getattr(datamodule, name, None), "generator", None)
            if isinstance(generator, torch.Generator):
                self._generators[name] = generator

    def state_dict(self) -> dict[str, Any]:
        # Called while the checkpoint is assembled: the state at the moment it is written.
        state: dict[str, Any] = {"global": capture_global_rng(), "transform": None}
        if self._transform is not None:
            state["transform"] = _capture_transform(self._transform)
        state["generators"] = {k: g.get_state() for k, g in self._generators.items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore_global_rng(state_dict["global"])
        if self._transform is not None and state_dict.get("transform") is not None:
            _restore_transform(self._transform, state_dict["transform"])
        for name, generator_state in state_dict.get("generators", {}).items():
            if name in self._generators:
                self._generators[name].set_state(generator_state)
