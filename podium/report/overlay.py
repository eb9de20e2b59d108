"""Colour masks and blend them over images for a person to look at."""

from __future__ import annotations

import numpy as np

__all__ = ["colorize", "default_palette", "overlay"]


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """n well-separated colours (golden-angle hues), deterministic."""
    import colorsys

    colours = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def colorize(
    mask: np.ndarray, palette: list[tuple[int, int, int]], ignore_index: int | None = None
) -> np.ndarray:
    """H×W class ids → H×W×3 uint8; ignore pixels (and unknown ids) are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    if ignore_index is not None and 0 <= ignore_index < 256:
        lut[ignore_index] = 0
    return lut[np.clip(mask, 0, 255).astype(np.uint8)]


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    palette: list[tuple[int, int, int]],
    alpha: float = 0.5,
    ignore_index: int | None = None,
    clear_id: int | None = None,
) -> np.ndarray:
    """Blend colorize(mask) over an H×W×3 (or H×W×1) uint8 image; pixels whose id is
    `clear_id` (multi-label "no class") show the image unblended."""
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
    colours = colorize(mask, palette, ignore_index).astype(np.float32)
    blended = image.astype(np.float32) * (1 - alpha) + colours * alpha
    if clear_id is not None:
        blended = np.where((mask == clear_id)[..., None], image, blended)
    return blended.round().astype(np.uint8)
