"""`podium predict`: a folder of images in; masks, overlays, probabilities and timings out."""

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
from podium.data.rle_csv import masks_to_rows, write_rle_csv
from podium.inference.pipeline import Predictor
from podium.inference.postprocess import check_class_rule, load_postprocess, masks_from_probs
from podium.inference.probabilities import save_probabilities, write_timings_csv
from podium.io import write_mask_png, write_rgb_png
from podium.report.overlay import default_palette, overlay

__all__ = [
    "PredictionSummary",
    "predict_folder",
]


@dataclass
class PredictionSummary:
    written: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def predict_folder(
    config: Config,
    predictor: Predictor,
    input_dir: Path,
    output_dir: Path,
    overlays: bool = True,
    save_probs: bool = False,
    submission: Path | None = None,
) -> PredictionSummary:
    """Image by image (sizes may differ); unreadable images are skipped, counted and named.

    submission: also stream a Kaggle RLE CSV (every image × class row) for a sigmoid head.
    """
    summary = PredictionSummary()
    results = _predict_each(config, predictor, input_dir, output_dir, overlays, save_probs, summary)
    if submission is None:
        for _ in results:
            pass
        return summary
    head = predictor.head_of_kind("mask")
    if predictor.specs[head].activation != "sigmoid":
        raise ValueError("--submission writes Kaggle RLE rows per class: it needs a sigmoid head")
    write_rle_csv(
        submission, (row for path, mask in results for row in masks_to_rows(path.name, mask))
    )
    return summary


def _predict_each(config, predictor, input_dir, output_dir, overlays, save_probs, summary):
    """Predict, write per-image outputs, yield (path, mask); fills `summary` as it goes."""
    head, class_head = predictor.head_of_kind("mask"), predictor.head_of_kind("class")
    spec = predictor.specs[head]
    pp = None
    if config.inference.postprocess:
        pp = load_postprocess(config.inference.postprocess, spec.classes)
        check_class_rule(pp, class_head, config.inference.postprocess, predictor.options.tile)
    palette = config.data.palette or default_palette(spec.classes)
    timings = []
    start = time.perf_counter()
    for stem, path in tqdm(list_images(input_dir).items(), desc="predict", unit="img"):
        try:
            image = read_image(path, config.model.in_channels)
        except DataError as error:
            summary.skipped.append(f"{path}: {error}")
            continue
        t0 = time.perf_counter()
        probs = predictor(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        mask = masks_from_probs(probs[head], spec.activation, pp, probs.get(class_head))
        seconds = round(time.perf_counter() - t0, 6)
        timings.append(
            {"image": stem, "height": image.shape[0], "width": image.shape[1], "seconds": seconds}
        )
        _write_outputs(output_dir, stem, image, mask, probs, palette, config, overlays, save_probs)
        summary.written += 1
        yield path, mask
    summary.seconds = time.perf_counter() - start
    if timings:
        write_timings_csv(output_dir / "timings.csv", timings)


def _write_outputs(out: Path, stem, image, mask, probs, palette, config, overlays, save_probs):
    if mask.ndim == 3:  # multi-label: one single-channel 0/1 PNG per class
        for c, layer in enumerate(mask):
            write_mask_png(out / "masks" / f"{stem}_class{c + 1}.png", layer, None)
        flat = np.where(mask.any(0), mask.argmax(0) + 1, 0).astype(np.uint8)
        shown, palette = flat, [(0, 0, 0), *palette]
    else:
        write_mask_png(out / "masks" / f"{stem}.png", mask, palette)
        shown = mask
    if overlays:
        clear = 0 if mask.ndim == 3 else None  # multi-label: pixels of no class stay clear
        blended = overlay(image, shown, palette, config.inference.overlay_alpha, clear_id=clear)
        write_rgb_png(out / "overlays" / f"{stem}.png", blended)
    if save_probs:
        save_probabilities(
            out / "probabilities" / f"{stem}.npz",
            {k: v.float().cpu().numpy() for k, v in probs.items()},
        )
