"""LR sweep plot: validation and training loss against LR (log scale)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from podium.io import atomic_open  # noqa: E402

__all__ = ["plot_sweep"]


def plot_sweep(points, suggestion: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    lrs = [p.lr for p in points]
    ax.plot(lrs, [p.val_loss for p in points], marker="o", label="validation loss")
    ax.plot(lrs, [p.train_loss for p in points], marker=".", alpha=0.6, label="training loss")
    ax.axvline(suggestion, color="red", linestyle="--", label=f"suggested {suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss after the short run")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    plt.close(fig)
