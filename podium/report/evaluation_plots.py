"""Confusion matrix and best/worst image grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from podium.io import atomic_open  # noqa: E402
from podium.report.overlay import default_palette, overlay  # noqa: E402

__all__ = ["plot_best_worst", "plot_confusion"]


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


def plot_best_worst(predictor, dataset, best, worst, config, path: Path, head: str) -> None:
    """Rows of (image, truth overlay, prediction overlay) for best-k then worst-k images."""
    spec = predictor.specs[head]
    palette = config.data.palette or default_palette(spec.classes)
    index = {s.name: i for i, s in enumerate(dataset.samples)}
    rows = [("best", s, n) for s, n in best] + [("worst", s, n) for s, n in worst]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    ignore = config.data.ignore_index
    for row, (kind, score, name) in enumerate(rows):
        item = dataset[index[name]]
        image = item["image"]
        pred = predictor(image)[head].argmax(0).cpu()
        rgb = image.permute(1, 2, 0).numpy()
        truth = item[spec.target_key].numpy()
        panels = [
            rgb,
            overlay(rgb, truth, palette, config.inference.overlay_alpha, ignore),
            overlay(rgb, pred.numpy(), palette, config.inference.overlay_alpha),
        ]
        titles = [f"{kind}: {name}", "truth", f"prediction (mIoU {score:.3f})"]
        for ax, panel, title in zip(axes[row], panels, titles):
            ax.imshow(panel.squeeze())
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
