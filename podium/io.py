"""Atomic file writes (temp file in the same folder, flush, fsync, rename) and PNG writers."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_mask_png",
    "write_rgb_png",
]


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Write to a temp file beside `path`; rename over it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


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
