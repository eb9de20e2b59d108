"""`podium demo`: Blue Marble tiles → train → evaluate → predict, offline, on CPU in minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from podium.config import load_config
from podium.data.demo import build_demo_dataset
from podium.io import atomic_write_text

__all__ = ["demo_config", "run_demo"]


def demo_config(root: Path, output_dir: Path) -> dict[str, Any]:
    """A small Unet-ResNet18 from random init; sized to finish in minutes on 2 CPU cores."""
    flips = [
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
        {"__class_fullname__": "VerticalFlip", "p": 0.5},
        {"__class_fullname__": "RandomRotate90", "p": 0.5},
        {
            "__class_fullname__": "RandomBrightnessContrast",
            "p": 0.3,
            "brightness_limit": 0.1,
            "contrast_limit": 0.1,
        },
    ]
    return {
        "experiment": "demo-bluemarble",
        "seed": 7,
        "output_dir": str(output_dir),
        "data": {
            "format": "folder",
            "train": {"images": str(root / "train/images"), "masks": str(root / "train/masks")},
            "val": {"images": str(root / "val/images"), "masks": str(root / "val/masks")},
            "classes": ["ocean", "land", "lake"],
            "palette": [[25, 70, 170], [80, 160, 60], [90, 210, 250]],
            "ignore_index": 255,
            "batch_size": 32,
            "num_workers": "auto",
        },
        "model": {
            "arch": "Unet",
            "encoder_name": "resnet18",
            "encoder_weights": None,
            "kwargs": {"decoder_channels": [128, 64, 32, 16, 16]},
        },
        "heads": {
            "mask": {
                "kind": "mask",
                "classes": 3,
                "activation": "softmax",
                "loss": [{"name": "ce", "weight": 1.0}, {"name": "dice", "weight": 0.5}],
                "metrics": ["iou", "dice", "accuracy"],
            }
        },
        "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "augmentation": {"train": flips},
        "trainer": {
            "max_epochs": 6,
            "monitor": "val/mask/iou",
            "monitor_mode": "max",
            "save_top_k": 2,
            "log_every_n_steps": 10,
        },
        "inference": {"batch_size": 64, "grid_k": 4},
    }


def run_demo(output_dir: Path, cache: Path | None, overrides: list[str]) -> None:
    from podium.build.checkpoint import inference_options, load_module
    from podium.inference.pipeline import Predictor
    from podium.workflows.evaluate import evaluate
    from podium.workflows.fit import train
    from podium.workflows.predict import predict_folder

    typer.echo("1/4 building the Blue Marble tiles (once; cached)")
    dataset = build_demo_dataset(cache)
    typer.echo(f"    {dataset.num_train} train / {dataset.num_val} val tiles in {dataset.root}")
    raw = demo_config(dataset.root, output_dir)
    config = load_config(raw=raw, overrides=overrides)
    config_path = output_dir / "demo.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    typer.echo(f"2/4 training ({config_path})")
    run_dir = train(config)
    best = run_dir / "checkpoints" / "best.ckpt"
    typer.echo(f"3/4 evaluating {best}")
    config, module = load_module(best)
    predictor = Predictor([module], inference_options(config))
    result = evaluate(config, predictor, run_dir / "evaluation")
    majority = _majority_miou(result)
    typer.echo(
        f"    mIoU {result.miou:.4f} vs majority-class baseline {majority:.4f}; "
        f"pixel accuracy {result.pixel_accuracy:.4f}; {result.ms_per_image:.2f} ms/image"
    )
    for name, v in result.per_class.items():
        typer.echo(f"    {name:>6}: IoU {v['iou']:.4f}  Dice {v['dice']:.4f}")
    typer.echo("4/4 predicting the validation images")
    summary = predict_folder(
        config, predictor, dataset.root / "val/images", run_dir / "predictions"
    )
    typer.echo(f"    wrote {summary.written} masks and overlays to {run_dir / 'predictions'}")
    typer.echo(f"done: {run_dir}")


def _majority_miou(result) -> float:
    """mIoU of predicting the most frequent class everywhere: its IoU is its share, others 0."""
    pixels = [v["pixels"] for v in result.per_class.values()]
    return max(pixels) / max(1, sum(pixels)) / len(pixels)
