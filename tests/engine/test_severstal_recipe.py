"""Seed 001 end to end at demo scale: train → tune → predict --submission → score the CSV."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from podium.cli import app
from podium.data.rle_csv import decode_image_masks, read_rle_csv
from podium.data.rle_dataset import severstal_crop_transform_dict
from podium.data.severstal import make_severstal_dataset
from podium.metrics.kaggle import kaggle_dice_per_pair

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
runner = CliRunner()


@pytest.fixture(scope="module")
def severstal(tmp_path_factory):
    root = make_severstal_dataset(
        tmp_path_factory.mktemp("sev"), n_train=24, n_test=6, height=64, width=256, seed=3
    )
    raw = yaml.safe_load((CONFIGS / "severstal.yaml").read_text())
    raw["data"].update(
        images=str(root / "train_images"),
        csv=str(root / "train.csv"),
        batch_size=4,
        num_workers=0,
        val_fraction=0.25,
    )
    raw["model"].update(encoder_name="resnet18", encoder_weights=None)
    raw["augmentation"]["train"] = severstal_crop_transform_dict(64, 96)["transform"]["transforms"]
    raw["schedule"].update(flat_epochs=1, anneal_epochs=1)
    raw["trainer"].update(max_epochs=2, progress_bar=False)
    raw["output_dir"] = str(root / "runs")
    config = root / "severstal.yaml"
    config.write_text(yaml.safe_dump(raw))
    return root, config


def _run_dir(output: str) -> Path:
    return Path(re.findall(r"run folder: (\S+)", output)[-1])


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def trained(severstal) -> Path:
    _, config = severstal
    return _run_dir(_run("train", "-c", str(config)))


def test_train_tune_predict_submission_roundtrip(severstal, trained, tmp_path):
    root, config = severstal
    run_dir = trained
    best = run_dir / "checkpoints/best.ckpt"
    history = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val/mask/kaggle_dice" in history
    pp = tmp_path / "pp.yaml"
    tuned = _run("tune", "--ckpt", str(best), "-c", str(config), "--output", str(pp))
    assert yaml.safe_load(pp.read_text())["num_classes"] == 4
    # evaluate with the tuned YAML scores the validation split as tune said it would.
    report = tmp_path / "evaluation"
    _run("evaluate", "--ckpt", str(best), "-c", str(config), "--postprocess", str(pp),
         "--output", str(report))  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text())
    tuned_score = float(re.search(r"Kaggle Dice (\d\.\d+)", tuned).group(1))
    assert round(metrics["kaggle_dice"], 4) == tuned_score
    assert (report / "per_class.csv").read_text().startswith("class,kaggle_dice,dice,iou")
    assert (report / "best_worst.png").stat().st_size > 0
    # Predict the validation images with the tuned post-processing, into a submission.
    from podium.build import split_samples
    from podium.config import load_config

    cfg = load_config(config)
    val_ids = [s.image.name for s in split_samples(cfg, "val")]
    val_dir = tmp_path / "val_images"
    val_dir.mkdir()
    for name in val_ids:
        (val_dir / name).write_bytes((root / "train_images" / name).read_bytes())
    sub = tmp_path / "submission.csv"
    _run(
        "predict",
        "--ckpt",
        str(best),
        "-c",
        str(config),
        "--input",
        str(val_dir),
        "--output",
        str(tmp_path / "pred"),
        "--postprocess",
        str(pp),
        "--submission",
        str(sub),
    )
    rows = sub.read_text().splitlines()
    assert rows[0] == "ImageId,ClassId,EncodedPixels" and len(rows) == 1 + 4 * len(val_ids)
    # The CSV decodes to exactly the masks written as PNGs, and scores the same Kaggle Dice.
    submitted, truth = read_rle_csv(sub), read_rle_csv(root / "train.csv")
    from_csv, in_memory, target = [], [], []
    for name in val_ids:
        from_csv.append(decode_image_masks(submitted.get(name, {}), (64, 256), 4))
        stem = Path(name).stem
        in_memory.append(
            np.stack(
                [
                    np.asarray(Image.open(tmp_path / "pred/masks" / f"{stem}_class{c + 1}.png"))
                    for c in range(4)
                ]
            )
        )
        target.append(decode_image_masks(truth.get(name, {}), (64, 256), 4))
    a, b, t = (torch.from_numpy(np.stack(x)).bool() for x in (from_csv, in_memory, target))
    assert torch.equal(a, b)
    assert float(kaggle_dice_per_pair(a, t).mean()) == float(kaggle_dice_per_pair(b, t).mean())


def test_pseudo_labels_then_mixed_training(severstal, trained, tmp_path):
    root, config = severstal
    quick = ["--set", "trainer.max_epochs=1", "--set", "schedule={name: constant}"]
    best = trained / "checkpoints/best.ckpt"
    pseudo = tmp_path / "pseudo.csv"
    out = _run(
        "pseudo-label",
        "--ckpt",
        str(best),
        "-c",
        str(config),
        "--input",
        str(root / "test_images"),
        "--output",
        str(pseudo),
        "--confidence",
        "0.5",
        "--min-confident-share",
        "0.0",
    )
    assert "kept 6 of 6" in out
    _run(
        "train",
        "-c",
        str(config),
        *quick,
        "--set",
        f"data.pseudo.images={root / 'test_images'}",
        "--set",
        f"data.pseudo.csv={pseudo}",
        "--set",
        "data.pseudo.fraction=0.25",
    )


@pytest.fixture(scope="module")
def trained_with_class_head(severstal) -> Path:
    _, config = severstal
    head = "heads.has_defect={kind: class, classes: 1, weight: 0.5}"
    return _run_dir(_run("train", "-c", str(config), "--set", head))


def test_class_head_learns_presence_and_clears_masks(severstal, trained_with_class_head, tmp_path):
    """A "has defect" head trains beside the masks; tune searches its threshold; predict
    empties every mask of an image the head judges clean and leaves the others untouched."""
    from podium.inference.postprocess import PostProcess, save_postprocess
    from podium.inference.probabilities import load_probabilities

    root, config = severstal
    best = trained_with_class_head / "checkpoints/best.ckpt"
    history = (trained_with_class_head / "metrics.csv").read_text().splitlines()[0]
    assert "val/has_defect/auroc" in history and "train/has_defect/bce" in history
    tuned = tmp_path / "tuned.yaml"
    out = _run("tune", "--ckpt", str(best), "-c", str(config), "--output", str(tuned))
    assert "class threshold" in out
    assert len(yaml.safe_load(tuned.read_text())["class_threshold"]) == 4
    # Pixel rules alone (with probabilities saved), then the same plus the class-head rule.
    images = root / "test_images"
    pixel_rules = PostProcess(num_classes=4, thresholds=(0.5,) * 4, min_area=(10,) * 4)
    save_postprocess(pixel_rules, tmp_path / "pixel.yaml")
    _predict_submission(best, config, images, tmp_path / "pixel", "--save-probs")
    found = (tmp_path / "pixel/probabilities").glob("*.npz")
    has_defect = {p.stem: float(load_probabilities(p)["has_defect"][0]) for p in found}
    threshold = (min(has_defect.values()) + max(has_defect.values())) / 2
    with_class = PostProcess(**{**pixel_rules.__dict__, "class_threshold": (threshold,) * 4})
    save_postprocess(with_class, tmp_path / "class.yaml")
    _predict_submission(best, config, images, tmp_path / "class")
    pixel_only = read_rle_csv(tmp_path / "pixel.csv")
    cleared_by_class = read_rle_csv(tmp_path / "class.csv")
    checked = {"cleared": 0, "kept": 0}
    for name, masks in pixel_only.items():
        stem = Path(name).stem
        if abs(has_defect[stem] - threshold) < 1e-3:
            continue  # float16 NPZ values this close could fall on either side
        if has_defect[stem] < threshold:
            assert all(not rle for rle in cleared_by_class[name].values()), name
            checked["cleared"] += any(masks.values())  # counts only if there was a mask to clear
        else:
            assert cleared_by_class[name] == masks, name
            checked["kept"] += 1
    assert checked["cleared"] and checked["kept"], (checked, has_defect)


def _predict_submission(ckpt: Path, config: Path, images: Path, out: Path, *extra: str) -> None:
    """predict with out.yaml's post-processing into out/ and out.csv."""
    _run("predict", "--ckpt", str(ckpt), "-c", str(config), "--input", str(images),
         "--output", str(out), "--postprocess", f"{out}.yaml", "--submission", f"{out}.csv",
         "--no-overlays", *extra)  # fmt: skip
