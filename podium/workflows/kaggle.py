"""Severstal-style steps: tune post-processing on validation, submission CSV, pseudo-labels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from podium.build import dataset_for
from podium.config import Config
from podium.data.errors import DataError
from podium.data.formats import list_images
from podium.data.images import read_image
from podium.data.pseudo_sampler import pseudo_label_masks
from podium.data.rle_csv import masks_to_rows, write_rle_csv
from podium.inference.pipeline import Predictor
from podium.inference.tune import (
    DEFAULT_CLASS_THRESHOLDS,
    DEFAULT_IMAGE_THRESHOLDS,
    tune_postprocess,
)

__all__ = ["folder_probabilities", "pseudo_label_folder", "tune_on_validation"]


def _validation_items(config: Config, predictor: Predictor) -> Iterator[tuple]:
    """(name, C×H×W probabilities, C×H×W bool truth, class head probabilities or None) for each
    validation image, one at a time."""
    head, class_head = predictor.head_of_kind("mask"), predictor.head_of_kind("class")
    key = predictor.heads[head].target_key
    dataset = dataset_for(config, "val", augment=False)
    for index in tqdm(range(len(dataset)), desc="tune: predict validation", unit="img"):
        item = dataset[index]
        outputs = predictor(item["image"], item.get("inputs"))
        probs = outputs[head].float().cpu().numpy()
        class_probs = outputs[class_head].float().cpu().numpy() if class_head else None
        yield item["name"], probs, item[key].numpy().astype(bool), class_probs


def tune_on_validation(
    config: Config, predictor: Predictor, output: Path, image_rule: bool = False
) -> tuple:
    """Per-class threshold and min component area maximizing Kaggle Dice; written to YAML.

    image_rule: also search the max-probability image threshold. With a class head, its
    threshold is searched too (0 = rule off stays a candidate, so it is used only if it helps).
    """
    spec = predictor.heads[predictor.head_of_kind("mask")]
    if spec.activation != "sigmoid":
        raise ValueError(
            "podium tune searches per-class thresholds of a sigmoid (multi-label) "
            f"mask head; {spec.name!r} is {spec.activation}"
        )
    has_class_head = predictor.head_of_kind("class") is not None
    return tune_postprocess(
        _validation_items(config, predictor),
        output=output,
        image_thresholds=DEFAULT_IMAGE_THRESHOLDS if image_rule else None,
        class_thresholds=DEFAULT_CLASS_THRESHOLDS if has_class_head else None,
    )


def folder_probabilities(
    config: Config, predictor: Predictor, input_dir: Path, skipped: list[str]
) -> Iterator[tuple[Path, np.ndarray, torch.Tensor]]:
    """(path, image, {head: probs}) per readable image; unreadable ones go to `skipped`."""
    for path in tqdm(list_images(input_dir).values(), desc="predict", unit="img"):
        try:
            image = read_image(path, config.model.in_channels)
        except DataError as error:
            skipped.append(f"{path}: {error}")
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        yield path, image, predictor(tensor)


def pseudo_label_folder(
    config: Config,
    predictor: Predictor,
    input_dir: Path,
    output: Path,
    confidence: float = 0.8,
    min_confident_share: float = 0.99,
) -> tuple[int, int, list[str]]:
    """Confident predictions on unlabelled images → Kaggle RLE CSV (kept, seen, skipped)."""
    head, skipped, counts = predictor.head_of_kind("mask"), [], {"kept": 0, "seen": 0}

    def rows():
        for path, _, probs in folder_probabilities(config, predictor, input_dir, skipped):
            counts["seen"] += 1
            mask, keep = pseudo_label_masks(
                probs[head].float().cpu().numpy(), 0.5, confidence, min_confident_share
            )
            if keep:
                counts["kept"] += 1
                yield from masks_to_rows(path.name, mask)

    write_rle_csv(output, rows())
    return counts["kept"], counts["seen"], skipped
