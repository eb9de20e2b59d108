"""Dataset statistics as one PNG: class pixel share, image presence, image sizes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from podium.io import atomic_open  # noqa: E402

__all__ = ["plot_dataset_stats"]

_MAX_SIZES = 20  # the long tail of image sizes would make the bars unreadable


def plot_dataset_stats(stats: dict, path: Path | str) -> None:
    """Three bar charts from a `dataset_stats` dict, written atomically as PNG."""
    names = stats["class_names"]
    sizes = stats["image_sizes"][:_MAX_SIZES]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    _bars(axes[0], names, stats["class_pixel_share"], "class pixel share (of labelled pixels)")
    if any(stats["class_pixel_share"]):
        axes[0].set_yscale("log")  # shares span orders of magnitude in most datasets
    presence_title = f"images containing class (of {stats['num_masks']})"
    _bars(axes[1], names, stats["class_images"], presence_title)
    size_labels = [f"{s['height']}×{s['width']}" for s in sizes]
    title = f"image sizes H×W (top {len(sizes)} of {len(stats['image_sizes'])})"
    _bars(axes[2], size_labels, [s["count"] for s in sizes], title)
    fig.suptitle(
        f"{stats['num_images']} images, empty masks {stats['empty_share']:.1%}, "
        f"ignore pixels {stats['ignore_share']:.2%}",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    plt.close(fig)


def _bars(ax, labels: list[str], values: list[float], title: str) -> None:
    """One labelled bar chart on `ax`; labels turn vertical when there are many."""
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90 if len(labels) > 8 else 0, fontsize=8)
    ax.set_title(title, fontsize=10)
