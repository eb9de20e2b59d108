"""YAML data options reach training: multi-scale tiles, copy-paste, class-balanced sampling."""

from __future__ import annotations

import torch

from podium.build import build_datamodule
from podium.config import load_config
from podium.data.copy_paste import CopyPaste
from podium.data.tiling import TiledDataset
from podium.workflows.fit import train


def test_tiles_copy_paste_and_balanced_sampler_from_yaml(tiny_config):
    tiny_config["data"]["train_tiles"] = {"scales": [1.0, 0.5], "tile": 32, "overlap": 0.5}
    tiny_config["augmentation"]["train"] = [
        {"__class_fullname__": "podium.data.copy_paste.CopyPaste", "classes": [1, 2], "p": 1.0},
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    ]
    config = load_config(raw=tiny_config)
    dm = build_datamodule(config)
    assert isinstance(dm.train_set, TiledDataset)
    # 64 px at scale 1 with 32 px tiles at 50 % overlap: 3×3 windows; at 0.5: one 32 px tile.
    assert len(dm.train_set) == 12 * (9 + 1)
    item = dm.train_set[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (32, 32)
    paste = next(t for t in dm.train_set.transform.transforms if isinstance(t, CopyPaste))
    assert paste._donors is not None  # donors attached from the training samples
    run_dir = train(config)
    assert (run_dir / "checkpoints/last.ckpt").is_file()


def test_class_balanced_sampler_is_used(tiny_config):
    tiny_config["data"]["sampler"] = "class_balanced"
    dm = build_datamodule(load_config(raw=tiny_config))
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, torch.utils.data.WeightedRandomSampler)
    assert len(loader.sampler) == 12
