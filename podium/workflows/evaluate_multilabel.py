"""`podium evaluate` for sigmoid (multi-label) mask heads: Kaggle Dice, pixel and image scores.

Each validation image is predicted (TTA, tiles, ensembles as configured), binarized by the
post-processing YAML when one is given (thresholds, min areas, image and class-head rules) or at
0.5, and scored per class three ways: Kaggle's pair Dice (empty prediction on empty truth = 1),
pixel Dice/IoU pooled over the split, and image-level presence (does the image hold the class:
precision/recall of a non-empty prediction), which is what a class head and the image rules
decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from podium.build import dataset_for
from podium.config import Config
from podium.inference.pipeline import Predictor
from podium.inference.postprocess import (
    PostProcess,
    check_class_rule,
    load_postprocess,
    masks_from_probs,
)
from podium.io import atomic_write_text
from podium.metrics.kaggle import kaggle_dice_per_pair
from podium.report.evaluation_plots import plot_mask_rows
from podium.report.overlay import default_palette

__all__ = ["MultilabelEvaluation", "evaluate_multilabel", "flatten_multilabel"]

_COUNTS = ("pair_dice", "tp", "fp", "fn", "img_tp", "img_fp", "img_fn")


@dataclass
class MultilabelEvaluation:
    per_class: dict[str, dict[str, float]]
    kaggle_dice: float
    mdice: float
    miou: float
    ms_per_image: float
    images: int
    postprocess: str | None


def flatten_multilabel(masks: np.ndarray) -> np.ndarray:
    """C×H×W 0/1 → H×W ids for display: 0 = none, c + 1 = the first class present."""
    return np.where(masks.any(0), masks.argmax(0) + 1, 0).astype(np.uint8)


def _binarize(probs: torch.Tensor, class_probs, pp: PostProcess | None) -> torch.Tensor:
    """B×C×H×W probabilities (+ B×K class head) → B×C×H×W bool, exactly as predict writes."""
    heads = [None] * len(probs) if class_probs is None else class_probs
    masks = [masks_from_probs(p, "sigmoid", pp, k) for p, k in zip(probs, heads)]
    return torch.from_numpy(np.stack(masks)).bool()


def _count(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """B×C×H×W bool pred/truth → per-class (C,) sums of every score ingredient."""
    pixel = (2, 3)
    pred_any, truth_any = pred.any(dim=pixel), truth.any(dim=pixel)
    return {
        "pair_dice": kaggle_dice_per_pair(pred, truth).sum(0),
        "tp": (pred & truth).sum(pixel).sum(0),
        "fp": (pred & ~truth).sum(pixel).sum(0),
        "fn": (~pred & truth).sum(pixel).sum(0),
        "img_tp": (pred_any & truth_any).sum(0),
        "img_fp": (pred_any & ~truth_any).sum(0),
        "img_fn": (~pred_any & truth_any).sum(0),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _per_class(names: list[str], totals: dict[str, np.ndarray], n: int) -> dict[str, dict]:
    out = {}
    for c, name in enumerate(names):
        tp, fp, fn = (float(totals[k][c]) for k in ("tp", "fp", "fn"))
        img_tp, img_fp, img_fn = (float(totals[k][c]) for k in ("img_tp", "img_fp", "img_fn"))
        out[name] = {
            "kaggle_dice": float(totals["pair_dice"][c]) / n,
            "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "iou": _ratio(tp, tp + fp + fn),
            "image_precision": _ratio(img_tp, img_tp + img_fp),
            "image_recall": _ratio(img_tp, img_tp + img_fn),
            "images_with_class": int(img_tp + img_fn),
        }
    return out


def evaluate_multilabel(
    config: Config, predictor: Predictor, out_dir: Path, head: str
) -> MultilabelEvaluation:
    """Score the validation split; write metrics.json, per_class.csv and best_worst.png."""
    from podium.workflows.evaluate import synced_clock

    spec, class_head = predictor.heads[head], predictor.head_of_kind("class")
    source = config.inference.postprocess
    pp = load_postprocess(source, spec.classes) if source else None
    if pp is not None:
        check_class_rule(pp, class_head, source, predictor.options.tile)
    dataset = dataset_for(config, "val", augment=False)
    loader = DataLoader(dataset, batch_size=config.inference.batch_size, num_workers=0)
    totals = {k: np.zeros(spec.classes, dtype=np.float64) for k in _COUNTS}
    scored: list[tuple[float, int]] = []
    seconds = 0.0
    for batch in tqdm(loader, desc="evaluate", unit="batch"):
        start = synced_clock(predictor.device)
        outputs = predictor.batch(batch["image"], batch.get("inputs"))
        seconds += synced_clock(predictor.device) - start
        pred = _binarize(outputs[head].float(), outputs.get(class_head), pp)
        truth = batch[spec.target_key] == 1
        for key, value in _count(pred, truth).items():
            totals[key] += value.double().numpy()
        for dice in kaggle_dice_per_pair(pred, truth).mean(1).tolist():
            scored.append((dice, len(scored)))
    n = len(dataset)
    names = _class_names(config, spec.classes)
    per_class = _per_class(names, totals, n)
    result = MultilabelEvaluation(
        per_class=per_class,
        kaggle_dice=float(np.mean([v["kaggle_dice"] for v in per_class.values()])),
        mdice=float(np.nanmean([v["dice"] for v in per_class.values()])),
        miou=float(np.nanmean([v["iou"] for v in per_class.values()])),
        ms_per_image=1000 * seconds / max(1, n),
        images=n,
        postprocess=str(source) if source else None,
    )
    _write_report(config, predictor, dataset, result, scored, out_dir, head, pp)
    return result


def _class_names(config: Config, classes: int) -> list[str]:
    names = list(config.data.classes)
    return [names[c] if c < len(names) else str(c + 1) for c in range(classes)]


def _write_report(config, predictor, dataset, result, scored, out_dir, head, pp) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(result.__dict__, indent=2))
    keys = list(next(iter(result.per_class.values())))
    lines = [",".join(["class", *keys])] + [
        ",".join([name, *(_cell(v[k]) for k in keys)]) for name, v in result.per_class.items()
    ]
    atomic_write_text(out_dir / "per_class.csv", "\n".join(lines) + "\n")
    scored.sort()
    k = min(config.inference.grid_k, len(scored) // 2 or 1)
    picks = [("best", *s) for s in scored[::-1][:k]] + [("worst", *s) for s in scored[:k]]
    rows = [_grid_row(predictor, dataset, head, pp, *pick) for pick in picks]
    # Display ids are shifted by one (0 = no class), so black leads the class colours.
    palette = [(0, 0, 0), *(config.data.palette or default_palette(len(result.per_class)))]
    alpha = config.inference.overlay_alpha
    plot_mask_rows(rows, palette, alpha, out_dir / "best_worst.png", clear_id=0)


def _cell(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"


def _grid_row(predictor, dataset, head, pp, kind: str, score: float, index: int) -> tuple:
    """(title, H×W×3 image, truth ids, prediction ids, caption) of one validation image."""
    item = dataset[index]
    outputs = predictor(item["image"], item.get("inputs"))
    class_head = predictor.head_of_kind("class")
    class_probs = outputs[class_head][None] if class_head in outputs else None
    pred = _binarize(outputs[head][None].float(), class_probs, pp)[0].numpy()
    truth = (item[predictor.heads[head].target_key] == 1).numpy()
    image = item["image"].permute(1, 2, 0).numpy()
    caption = f"prediction (Kaggle Dice {score:.3f})"
    title = f"{kind}: {item['name']}"
    return title, image, flatten_multilabel(truth), flatten_multilabel(pred), caption
