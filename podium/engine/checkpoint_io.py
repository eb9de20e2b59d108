"""Checkpoints written atomically, so a kill mid-write leaves the previous file intact."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from podium.io import atomic_open

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning writes in place by default; we write a temp file and rename it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)
