"""Rebuild a trained model from a checkpoint alone (the config travels inside it)."""

from __future__ import annotations

from pathlib import Path

import torch

from podium.build import build_module
from podium.config import Config, load_config
from podium.engine.module import PodiumModule

__all__ = ["config_from_checkpoint", "load_module", "pick_device", "with_trained_architecture"]


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
