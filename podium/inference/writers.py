"""Writers: class-id PNG masks (palette PNG when colours are known) and overlays."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from podium.io import atomic_write_bytes

__all__ = ["write_mask_png", "write_rgb_png"]


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def write_mask_png(
    path: Path, mask: np.ndarray, palette: list[tuple[int, int, int]] | None
) -> None:
    """H×W class ids → PNG whose pixel values ARE the class ids ('P' mode shows colours)."""
    image = Image.fromarray(mask.astype(np.uint8), mode="L")
    if palette:
        image = image.convert("P")
        flat = [c for colour in palette for c in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
    atomic_write_bytes(path, _png_bytes(image))


def write_rgb_png(path: Path, rgb: np.ndarray) -> None:
    atomic_write_bytes(path, _png_bytes(Image.fromarray(rgb)))
