"""Tiny folder datasets with dense targets (16-bit PNG height maps) and an inputs CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from podium.data.synthetic import make_folder_dataset

NODATA = 65535
SCALE = 0.01


def height_raw(index: int, size: tuple[int, int]) -> np.ndarray:
    """H×W uint16 ramp (distinct per image) with a no-data block in the top-left corner."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    raw = (1000 + 37 * index + 11 * xx + 5 * yy).astype(np.uint16)
    raw[:3, :4] = NODATA
    return raw


def make_dense_split(
    root: Path, n: int = 4, size: tuple[int, int] = (32, 48), seed: int = 0, masks: bool = True
) -> Path:
    """root/images, root/masks (unless masks=False), root/heights/*.png, root/inputs.csv."""
    make_folder_dataset(root, n=n, size=size, num_classes=3, seed=seed)
    if not masks:
        shutil.rmtree(root / "masks")
    (root / "heights").mkdir()
    rows = ["name,gsd"]
    for index, image in enumerate(sorted((root / "images").iterdir())):
        cv2.imwrite(str(root / "heights" / f"{image.stem}.png"), height_raw(index, size))
        rows.append(f"{image.stem},{0.5 + index / 10}")
    (root / "inputs.csv").write_text("\n".join(rows) + "\n")
    return root


def dense_data_section(root: Path, masks: bool = True) -> dict:
    """The `data` YAML section over root/train and root/val made by `make_dense_split`."""

    def split(name: str) -> dict:
        folder = root / name
        return {
            "images": str(folder / "images"),
            "masks": str(folder / "masks") if masks else None,
            "inputs": str(folder / "inputs.csv"),
        }

    return {
        "format": "folder",
        "train": split("train"),
        "val": split("val"),
        "targets": {"height": {"dir": "heights", "scale": SCALE, "nodata": NODATA}},
        "classes": ["a", "b", "c"],
        "num_workers": 0,
        "batch_size": 2,
    }
