"""Seed 001 end to end at demo scale: train → tune → predict --submission → score the CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
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
    import re

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
    assert "Kaggle Dice" in _run(
        "tune", "--ckpt", str(best), "-c", str(config), "--output", str(pp)
    )
    assert yaml.safe_load(pp.read_text())["num_classes"] == 4
    # Predict the validation images with the tuned post-processing, into a submission.
    from podium.build import rle_split_ids
    from podium.config import load_config

    cfg = load_config(config)
    val_ids = rle_split_ids(cfg)[1]
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
                    np.asarray(
                        __import__("PIL.Image").Image.open(
                            tmp_path / "pred/masks" / f"{stem}_class{c + 1}.png"
                        )
                    )
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
