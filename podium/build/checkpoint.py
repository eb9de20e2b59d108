"""Rebuild a trained model from a checkpoint alone (the config travels inside it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from podium.build.model import build_module
from podium.config import Config, load_config
from podium.engine.module import PodiumModule
from podium.inference.ensemble import average_checkpoints
from podium.inference.pipeline import InferenceOptions

__all__ = [
    "config_from_checkpoint",
    "inference_options",
    "load_averaged_module",
    "load_members",
    "load_module",
    "pick_device",
    "with_trained_architecture",
]


def _read(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"checkpoint {path} cannot be read ({error}); is it complete?") from None


def config_from_checkpoint(path: Path) -> Config:
    checkpoint = _read(path)
    if "podium_config" not in checkpoint:
        raise ValueError(f"checkpoint {path} was not written by podium (no 'podium_config')")
    return load_config(raw=checkpoint["podium_config"])


def with_trained_architecture(config: Config, trained: Config) -> Config:
    """`config` (data paths, inference settings) with what the weights were trained as:
    model, heads and input normalization come from the checkpoint's config."""
    merged = config.model_copy(deep=True)
    merged.model = trained.model
    merged.heads = trained.heads
    # Set without re-validation: a stats_file in `config` must not override trained values.
    object.__setattr__(merged.data, "mean", trained.data.mean)
    object.__setattr__(merged.data, "std", trained.data.std)
    return merged


def load_module(
    path: Path, config: Config | None = None, device: str | None = None
) -> tuple[Config, PodiumModule]:
    """Model weights from `path`, rebuilt as the checkpoint's config says; `config` supplies
    everything else (data, inference)."""
    checkpoint = _read(path)
    if "podium_config" not in checkpoint:
        raise ValueError(f"checkpoint {path} was not written by podium (no 'podium_config')")
    trained = load_config(raw=checkpoint["podium_config"])
    config = trained if config is None else with_trained_architecture(config, trained)
    module = build_module(config)
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return config, module.to(pick_device(device))


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_averaged_module(
    paths: Sequence[Path], config: Config | None = None, device: str | None = None
) -> tuple[Config, PodiumModule]:
    """(config, module) built from the first checkpoint, carrying the averaged weights."""
    config, module = load_module(paths[0], config, device)
    module.load_state_dict(average_checkpoints(paths))
    return config, module.eval()


def load_members(
    ckpts: Sequence[Path], config: Config | None, average: bool, device: str | None = None
) -> tuple[Config, list]:
    """(config of the first, [modules]); `average` merges the checkpoints into one model."""
    if not ckpts:
        raise ValueError("give at least one --ckpt")
    if average:
        config, module = load_averaged_module(list(ckpts), config, device)
        return config, [module]
    loaded = [load_module(path, config if i == 0 else None, device) for i, path in enumerate(ckpts)]
    return loaded[0][0], [module for _, module in loaded]


def inference_options(config: Config) -> InferenceOptions:
    i = config.inference
    return InferenceOptions(
        i.tta, tuple(i.scales), i.tile, i.overlap, i.blend, i.batch_size, i.max_batch
    )
