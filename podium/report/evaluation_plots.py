"""Confusion matrix and best/worst image grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from podium.io import atomic_open  # noqa: E402
from podium.report.overlay import overlay  # noqa: E402

__all__ = ["plot_confusion", "plot_mask_rows"]


def _save(fig, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path) -> None:
    """Row-normalized (recall) confusion matrix with raw counts in the cells."""
    rows = confusion.sum(1, keepdims=True).clip(min=1)
    norm = confusion / rows
    size = max(4, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{confusion[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title("confusion matrix (row-normalized)")
    fig.tight_layout()
    _save(fig, path)


def plot_mask_rows(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, str]],
    palette: list[tuple[int, int, int]],
    alpha: float,
    path: Path,
    ignore_index: int | None = None,
    clear_id: int | None = None,
) -> None:
    """(title, H×W×C uint8 image, H×W truth ids, H×W predicted ids, caption) per row → PNG of
    image | truth overlay | prediction overlay; rows take the images' aspect ratio."""
    h, w = rows[0][1].shape[:2]
    row_height = 3 * min(1.0, h / w) + 0.4  # wide strips (Severstal 1:6) get short rows
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, row_height * len(rows)), squeeze=False)
    for row, (title, image, truth, pred, caption) in enumerate(rows):
        panels = [
            image,
            overlay(image, truth, palette, alpha, ignore_index, clear_id),
            overlay(image, pred, palette, alpha, clear_id=clear_id),
        ]
        for ax, panel, text in zip(axes[row], panels, [title, "truth", caption]):
            ax.imshow(panel.squeeze(), cmap="gray" if panel.shape[-1] == 1 else None)
            ax.set_title(text, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
