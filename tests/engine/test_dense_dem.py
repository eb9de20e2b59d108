"""A dense head learns a real elevation model; a mask head and a dense head train together.

The data is matplotlib's Jacksboro fault DEM cut into 32×32 tiles (podium.data.dem): shaded
relief images, 16-bit height PNGs with a no-data block, elevation-band masks, from one folder
dataset with `data.targets`. Validation tiles are a band of columns the model never sees.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from podium.build.checkpoint import inference_options, load_module
from podium.config import load_config
from podium.data.dem import make_dem_dataset
from podium.inference.pipeline import Predictor
from podium.workflows.fit import train
from podium.workflows.predict import predict_folder
from tests.conftest import tiny_config_dict


@pytest.fixture(scope="module")
def dem_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dem")
    data = make_dem_dataset(root / "data", tile=32, image="relief")
    raw = tiny_config_dict(root, root / "runs", max_epochs=5)
    raw["data"] = {**data, "batch_size": 8, "num_workers": 0}
    raw["heads"] = {
        "bands": {"kind": "mask", "classes": 3, "metrics": ["iou"]},
        # Elevations are 236..1076 m: the head works in (h - 650) / 200 and outputs metres.
        "height": {
            "kind": "dense",
            "target_mean": 650,
            "target_std": 200,
            "loss": [{"name": "l1"}],
        },
    }
    raw["trainer"].update(monitor="val/height/r2", monitor_mode="max")
    config = load_config(raw=raw)
    return config, train(config)


def _history(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_dense_head_beats_the_mean_predictor_on_held_out_terrain(dem_run):
    _, run_dir = dem_run
    rows = _history(run_dir)
    r2 = [float(r["val/height/r2"]) for r in rows]
    # R² > 0 is better than predicting the validation mean everywhere.
    assert max(r2) > 0.3, r2
    assert float(rows[-1]["val/height/mae"]) < float(rows[0]["val/height/mae"])


def test_mask_and_dense_heads_train_together_from_one_folder_dataset(dem_run):
    _, run_dir = dem_run
    rows = _history(run_dir)
    assert {"train/bands/ce", "train/height/l1", "val/bands/iou", "val/height/rmse"} <= set(rows[0])
    # Three tertile bands: a majority guess scores an IoU near 1/9; the model does better.
    assert max(float(r["val/bands/iou"]) for r in rows) > 0.3


def test_predict_writes_height_maps_in_metres(dem_run, tmp_path):
    config, run_dir = dem_run
    cfg, module = load_module(run_dir / "checkpoints/best.ckpt", config)
    predictor = Predictor([module], inference_options(cfg))
    images = config.data.val.images
    summary = predict_folder(cfg, predictor, images, tmp_path / "out")
    assert summary.written == len(list(images.glob("*.png"))) and not summary.skipped
    stem = sorted(p.stem for p in images.glob("*.png"))[1]
    height = tifffile.imread(tmp_path / "out" / "height" / f"{stem}.tif")
    assert height.shape == (1, 32, 32) and height.dtype == np.float32
    assert 100 < float(height.mean()) < 1200  # metres, not normalized units
    assert (tmp_path / "out" / "masks" / f"{stem}.png").is_file()
    assert (tmp_path / "out" / "overlays" / f"{stem}_height.png").is_file()
