"""Shared fixtures: a tiny learnable folder dataset and a config that trains on it in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.data.synthetic import make_folder_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    make_folder_dataset(root / "train", n=12, size=(64, 64), num_classes=3, seed=1)
    make_folder_dataset(root / "val", n=6, size=(64, 64), num_classes=3, seed=2)
    return root


def tiny_config_dict(data_root: Path, output_dir: Path, **trainer) -> dict:
    """A Unet-ResNet18 (random init, thin decoder) that runs an epoch in ~1 s on CPU."""
    return {
        "experiment": "tiny",
        "seed": 3,
        "output_dir": str(output_dir),
        "data": {
            "format": "folder",
            "train": {
                "images": str(data_root / "train/images"),
                "masks": str(data_root / "train/masks"),
            },
            "val": {"images": str(data_root / "val/images"), "masks": str(data_root / "val/masks")},
            "classes": ["a", "b", "c"],
            "batch_size": 4,
            "num_workers": 0,
        },
        "model": {
            "arch": "Unet",
            "encoder_name": "resnet18",
            "encoder_weights": None,
            "kwargs": {"decoder_channels": [32, 16, 16, 8, 8]},
        },
        "heads": {
            "mask": {
                "classes": 3,
                "loss": [{"name": "ce"}, {"name": "dice", "weight": 0.5}],
                "metrics": ["iou", "accuracy"],
            }
        },
        "optimizer": {"name": "adamw", "lr": 3e-3},
        "augmentation": {"train": [{"__class_fullname__": "HorizontalFlip", "p": 0.5}]},
        "trainer": {
            "max_epochs": 2,
            "progress_bar": False,
            "monitor": "val/mask/iou",
            "monitor_mode": "max",
            "log_every_n_steps": 1,
            **trainer,
        },
        "inference": {"batch_size": 4, "grid_k": 2},
    }


@pytest.fixture()
def tiny_config(tiny_data, tmp_path) -> dict:
    return tiny_config_dict(tiny_data, tmp_path / "runs")
