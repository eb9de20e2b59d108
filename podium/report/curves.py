"""Training curves: losses and validation metrics per epoch."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from podium.io import atomic_open  # noqa: E402

__all__ = ["plot_curves"]


def plot_curves(
    rows: list[dict[str, float]], path: Path, metric_keys: list[str] | None = None
) -> None:
    """Left: train/val loss; middle: validation metrics; right: learning rate per group."""
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    keys = sorted({k for r in rows for k in r})
    panels = [
        ("loss", [k for k in keys if k in ("train/loss", "val/loss")]),
        (
            "validation metrics",
            metric_keys or [k for k in keys if k.startswith("val/") and "loss" not in k],
        ),
        ("learning rate", [k for k in keys if k.startswith("lr-")]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, series) in zip(axes, panels):
        for key in series[:12]:
            values = [r.get(key, math.nan) for r in rows]
            ax.plot(epochs, values, marker="o", markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if series:
            ax.legend(fontsize=7)
    axes[2].set_yscale("log") if panels[2][1] else None
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    plt.close(fig)
