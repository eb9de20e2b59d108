"""`podium evaluate`: per-class IoU/Dice, mIoU, pixel accuracy, confusion matrix, best/worst."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import multiclass_confusion_matrix
from tqdm import tqdm

from podium.build import dataset_for
from podium.build.checkpoint import inference_options
from podium.config import Config
from podium.engine.module import PodiumModule
from podium.inference.pipeline import Predictor
from podium.io import atomic_write_text
from podium.report.evaluation_plots import plot_confusion, plot_mask_rows
from podium.report.overlay import default_palette

__all__ = ["EvaluationResult", "evaluate", "scores_from_confusion", "synced_clock"]


@dataclass
class EvaluationResult:
    per_class: dict[str, dict[str, float]]
    miou: float
    mdice: float
    pixel_accuracy: float
    ms_per_image: float
    images: int
    confusion: np.ndarray = field(repr=False)


def scores_from_confusion(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """C×C (rows truth, cols prediction) → per-class iou, dice (nan where class absent)."""
    confusion = confusion.astype(np.float64)
    tp = np.diag(confusion)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        dice = 2 * tp / (2 * tp + fp + fn)
    return {"iou": iou, "dice": dice}


def _image_miou(
    pred: torch.Tensor, target: torch.Tensor, classes: int, ignore: int | None
) -> float:
    cm = multiclass_confusion_matrix(pred[None], target[None], classes, ignore_index=ignore)
    return float(np.nanmean(scores_from_confusion(cm.cpu().numpy())["iou"]))


def evaluate(
    config: Config, predictor: Predictor | PodiumModule, out_dir: Path, head: str | None = None
):
    """Run the validation split through the model(s) and write the report into out_dir.

    `predictor` carries TTA, tiles and ensembles; a bare module means the config's options.
    Softmax heads give an EvaluationResult (confusion matrix); sigmoid heads a
    MultilabelEvaluation (Kaggle Dice, post-processing applied).
    """
    if isinstance(predictor, PodiumModule):
        predictor = Predictor([predictor], inference_options(config))
    head = head or predictor.head_of_kind("mask")
    if head is None:
        raise ValueError(
            "podium evaluate scores a mask head, and this model has none "
            f"(heads: {', '.join(predictor.heads)}); its validation metrics are in metrics.csv"
        )
    spec = predictor.heads[head]
    if spec.activation == "sigmoid":
        from podium.workflows.evaluate_multilabel import evaluate_multilabel

        return evaluate_multilabel(config, predictor, out_dir, head)
    dataset = dataset_for(config, "val", augment=False)
    loader = DataLoader(dataset, batch_size=config.inference.batch_size, num_workers=0)
    classes, ignore = spec.classes, config.data.ignore_index
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    scored: list[tuple[float, str]] = []
    model_seconds, device = 0.0, predictor.device
    for batch in tqdm(loader, desc="evaluate", unit="batch"):
        images = batch["image"].to(device)
        start = synced_clock(device)
        pred = predictor.batch(images, batch.get("inputs"))[head].argmax(1)
        model_seconds += synced_clock(device) - start
        target = batch[spec.target_key].to(device).long()
        confusion += multiclass_confusion_matrix(pred, target, classes, ignore_index=ignore).cpu()
        for i, name in enumerate(batch["name"]):
            scored.append((_image_miou(pred[i], target[i], classes, ignore), name))
    result = _summarize(config, confusion.numpy(), model_seconds, len(dataset))
    _write_report(config, predictor, dataset, result, scored, out_dir, head)
    return result


def synced_clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _summarize(config: Config, confusion: np.ndarray, seconds: float, n: int) -> EvaluationResult:
    scores = scores_from_confusion(confusion)
    names = config.data.classes
    per_class = {
        names[c] if c < len(names) else str(c): {
            "iou": float(scores["iou"][c]),
            "dice": float(scores["dice"][c]),
            "pixels": int(confusion[c].sum()),
        }
        for c in range(len(confusion))
    }
    total = confusion.sum()
    return EvaluationResult(
        per_class=per_class,
        miou=float(np.nanmean(scores["iou"])),
        mdice=float(np.nanmean(scores["dice"])),
        pixel_accuracy=float(np.trace(confusion) / total) if total else float("nan"),
        ms_per_image=1000 * seconds / max(1, n),
        images=n,
        confusion=confusion,
    )


def _write_report(config, predictor, dataset, result, scored, out_dir: Path, head: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.__dict__.items() if k != "confusion"}
    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=2))
    lines = ["class,iou,dice,pixels"] + [
        f"{name},{v['iou']:.6f},{v['dice']:.6f},{v['pixels']}"
        for name, v in result.per_class.items()
    ]
    atomic_write_text(out_dir / "per_class.csv", "\n".join(lines) + "\n")
    plot_confusion(result.confusion, list(result.per_class), out_dir / "confusion_matrix.png")
    scored.sort()
    k = min(config.inference.grid_k, len(scored) // 2 or 1)
    plot_best_worst(
        predictor, dataset, scored[::-1][:k], scored[:k], config, out_dir / "best_worst.png", head
    )


def plot_best_worst(predictor, dataset, best, worst, config, path: Path, head: str) -> None:
    """Rows of (image, truth overlay, prediction overlay) for best-k then worst-k images."""
    mask = predictor.heads[head]
    palette = config.data.palette or default_palette(mask.classes)
    index = {s.name: i for i, s in enumerate(dataset.samples)}
    rows = []
    for kind, picks in (("best", best), ("worst", worst)):
        for score, name in picks:
            item = dataset[index[name]]
            pred = predictor(item["image"], item.get("inputs"))[head].argmax(0).cpu().numpy()
            image = item["image"].permute(1, 2, 0).numpy()
            truth = item[mask.target_key].numpy()
            rows.append((f"{kind}: {name}", image, truth, pred, f"prediction (mIoU {score:.3f})"))
    alpha, ignore = config.inference.overlay_alpha, config.data.ignore_index
    plot_mask_rows(rows, palette, alpha, path, ignore)
