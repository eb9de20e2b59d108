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
from podium.data.inputs_csv import read_inputs_csv
from podium.data.rle_csv import masks_to_rows, write_rle_csv
from podium.heads import WriteContext
from podium.inference.pipeline import Predictor
from podium.inference.postprocess import check_class_rule, load_postprocess, masks_from_probs
from podium.inference.probabilities import save_probabilities, write_timings_csv

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
    inputs: Path | None = None,
) -> PredictionSummary:
    """Image by image (sizes may differ); unreadable images are skipped, counted and named.

    submission: also stream a Kaggle RLE CSV (every image × class row) for a sigmoid head.
    inputs: the CSV of the model's extra inputs (model.inputs) for these images.
    """
    summary = PredictionSummary()
    images = list_images(input_dir)
    extras = _extra_inputs(config, inputs, images)
    results = _predict_each(
        config, predictor, images, extras, output_dir, overlays, save_probs, summary
    )
    if submission is None:
        for _ in results:
            pass
        return summary
    head = predictor.head_of_kind("mask")
    if head is None or predictor.heads[head].activation != "sigmoid":
        raise ValueError("--submission writes Kaggle RLE rows per class: it needs a sigmoid head")
    write_rle_csv(
        submission, (row for path, mask in results for row in masks_to_rows(path.name, mask))
    )
    return summary


def _extra_inputs(config: Config, csv: Path | None, images: dict[str, Path]) -> dict:
    """stem → {input: 1-D float tensor} from the inputs CSV; {} for a model without inputs."""
    declared = config.model.inputs
    if not declared:
        return {}
    if csv is None:
        raise ValueError(
            f"the model reads extra inputs {sorted(declared)} besides the image: give their "
            "CSV with --inputs (a name column, then one column per value)"
        )
    rows = read_inputs_csv(Path(csv), declared, list(images))
    return {
        stem: {name: torch.tensor(values, dtype=torch.float32) for name, values in row.items()}
        for stem, row in rows.items()
    }


def _predict_each(config, predictor, images, extras, output_dir, overlays, save_probs, summary):
    """Predict, write every head's outputs, yield (path, mask or None); fills `summary`.

    The mask head's probabilities go through data.postprocess when set; every other head
    writes what its kind decodes (dense maps as TIFF, class scores as JSON, ...).
    """
    mask_name, class_name = predictor.head_of_kind("mask"), predictor.head_of_kind("class")
    pp = None
    if config.inference.postprocess and mask_name is not None:
        pp = load_postprocess(config.inference.postprocess, predictor.heads[mask_name].classes)
        check_class_rule(pp, class_name, config.inference.postprocess, predictor.options.tile)
    timings = []
    start = time.perf_counter()
    for stem, path in tqdm(images.items(), desc="predict", unit="img"):
        try:
            image = read_image(path, config.model.in_channels)
        except DataError as error:
            summary.skipped.append(f"{path}: {error}")
            continue
        t0 = time.perf_counter()
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        probs = predictor(tensor, extras.get(stem))
        decoded = {name: head.decode(probs[name]) for name, head in predictor.heads.items()}
        if pp is not None:
            mask = predictor.heads[mask_name]
            decoded[mask_name] = masks_from_probs(
                probs[mask_name], mask.activation, pp, probs.get(class_name)
            )
        seconds = round(time.perf_counter() - t0, 6)
        timings.append(
            {"image": stem, "height": image.shape[0], "width": image.shape[1], "seconds": seconds}
        )
        ctx = WriteContext(image, config.data.palette, config.inference.overlay_alpha, overlays)
        for name, head in predictor.heads.items():
            head.write(output_dir, stem, decoded[name], ctx)
        if save_probs:
            save_probabilities(
                output_dir / "probabilities" / f"{stem}.npz",
                {k: v.float().cpu().numpy() for k, v in probs.items()},
            )
        summary.written += 1
        yield path, decoded.get(mask_name)
    summary.seconds = time.perf_counter() - start
    if timings:
        write_timings_csv(output_dir / "timings.csv", timings)
