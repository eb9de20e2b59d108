"""Rebuild a trained model from a checkpoint alone (the config travels inside it)."""

from __future__ import annotations

from pathlib import Path

import torch

from podium.build import build_module
from podium.config import Config, load_config
from podium.engine.module import PodiumModule

__all__ = ["config_from_checkpoint", "load_module", "pick_device"]


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


def load_module(
    path: Path, config: Config | None = None, device: str | None = None
) -> tuple[Config, PodiumModule]:
    """Model weights from `path`; architecture from `config` or the checkpoint's own config."""
    checkpoint = _read(path)
    if config is None:
        config = load_config(raw=checkpoint["podium_config"])
    module = build_module(config)
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return config, module.to(pick_device(device))


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
