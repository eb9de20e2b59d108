"""`podium predict`: a folder of images in, masks and overlays out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from podium.config import Config
from podium.data.errors import DataError
from podium.data.formats import list_images
from podium.data.images import read_image
from podium.engine.module import PodiumModule
from podium.inference.forward import head_probabilities, predict_padded
from podium.inference.writers import write_mask_png, write_rgb_png
from podium.report.overlay import default_palette, overlay

__all__ = ["PredictionSummary", "predict_folder"]


@dataclass
class PredictionSummary:
    written: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def predict_folder(
    config: Config, module: PodiumModule, input_dir: Path, output_dir: Path, overlays: bool = True
) -> PredictionSummary:
    """One image at a time (sizes may differ); unreadable images are skipped and counted."""
    head = next(n for n, t in module.tasks.items() if t.spec.kind == "mask")
    spec = module.tasks[head].spec
    palette = config.data.palette or default_palette(spec.classes)
    (output_dir / "masks").mkdir(parents=True, exist_ok=True)
    if overlays:
        (output_dir / "overlays").mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary()
    start = time.perf_counter()
    for stem, path in tqdm(list_images(input_dir).items(), desc="predict", unit="img"):
        try:
            image = read_image(path, config.model.in_channels)
        except DataError as error:
            summary.skipped.append(f"{path}: {error}")
            continue
        mask = _predict_mask(module, image, head)
        write_mask_png(output_dir / "masks" / f"{stem}.png", mask, palette)
        if overlays:
            blended = overlay(image, mask, palette, config.inference.overlay_alpha)
            write_rgb_png(output_dir / "overlays" / f"{stem}.png", blended)
        summary.written += 1
    summary.seconds = time.perf_counter() - start
    return summary


def _predict_mask(module: PodiumModule, image: np.ndarray, head: str) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    outputs = predict_padded(module, tensor.to(module.device))
    probs = head_probabilities(module, outputs)[head][0]
    if module.tasks[head].spec.activation == "softmax":
        return probs.argmax(0).to(torch.uint8).cpu().numpy()
    # Multi-label: the first class above 0.5 wins in the single-layer PNG.
    return (probs > 0.5).float().argmax(0).to(torch.uint8).cpu().numpy()
