"""Writers for raw outputs: per-head float16 probabilities (NPZ) and per-image timings (CSV)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from podium.io import atomic_open

__all__ = ["load_probabilities", "save_probabilities", "write_timings_csv"]

_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _as_float16(name: str, values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any array → float16; refuse values float16 cannot hold rather than store inf."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    values = np.asarray(values, dtype=np.float32)
    if values.size and not np.isfinite(values).all():
        raise ValueError(f"head {name!r}: probabilities contain NaN or inf")
    if values.size and np.abs(values).max() > _FLOAT16_MAX:
        raise ValueError(f"head {name!r}: values exceed the float16 range (±{_FLOAT16_MAX:g})")
    return values.astype(np.float16)


def save_probabilities(path: Path | str, probs: Mapping[str, torch.Tensor | np.ndarray]) -> None:
    """{head: array (e.g. K×H×W)} → compressed float16 NPZ, one key per head, atomically."""
    if not probs:
        raise ValueError("save_probabilities needs at least one head")
    arrays = {name: _as_float16(name, values) for name, values in probs.items()}
    # A file handle (not a name) keeps numpy from appending '.npz' to the temp file.
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_probabilities(path: Path | str) -> dict[str, np.ndarray]:
    """NPZ written by save_probabilities → {head: float16 array}."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def write_timings_csv(path: Path | str, rows: Iterable[Mapping[str, object]]) -> None:
    """Rows (e.g. image, height, width, seconds) → CSV with the union of keys as columns."""
    rows = list(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
