"""A model with an extra per-image input (GSD-like) trains from the folder format's inputs CSV
and predicts with it, also under TTA and tiles; without the CSV predict says what to give."""

from __future__ import annotations

import pytest
import torch

from podium.build.checkpoint import inference_options, load_module
from podium.config import load_config
from podium.inference.pipeline import Predictor
from podium.workflows.fit import train
from podium.workflows.predict import predict_folder


def _inputs_csv(images, path, scale: float = 1.0):
    stems = sorted(p.stem for p in images.iterdir())
    path.write_text(
        "name,gsd\n" + "".join(f"{s},{scale * (i + 1):.3f}\n" for i, s in enumerate(stems))
    )
    return path


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    from tests.conftest import tiny_config_dict

    tmp = tmp_path_factory.mktemp("inputs")
    raw = tiny_config_dict(tiny_data, tmp / "runs", max_epochs=1)
    raw["model"]["inputs"] = {"gsd": 1}
    for split in ("train", "val"):
        images = tiny_data / split / "images"
        raw["data"][split]["inputs"] = str(_inputs_csv(images, tmp / f"{split}.csv"))
    raw["heads"]["mask"]["inputs"] = ["gsd"]
    config = load_config(raw=raw)
    return config, train(config), tmp


def test_the_inputs_reach_the_model_in_training(run):
    _, run_dir, _ = run
    history = (run_dir / "metrics.csv").read_text()
    assert "val/mask/iou" in history


@pytest.mark.parametrize("flags", [{}, {"tta": "d4"}, {"tta": "hflip", "tile": 32}])
def test_predict_reads_the_inputs_csv(run, tiny_data, tmp_path, flags):
    config, run_dir, tmp = run
    cfg, module = load_module(run_dir / "checkpoints/last.ckpt", config)
    for key, value in flags.items():
        setattr(cfg.inference, key, value)
    images = tiny_data / "val" / "images"
    csv = _inputs_csv(images, tmp_path / "predict.csv")
    predictor = Predictor([module], inference_options(cfg))
    summary = predict_folder(cfg, predictor, images, tmp_path / "out", inputs=csv)
    assert summary.written == len(list(images.iterdir())) and not summary.skipped


def test_the_input_changes_the_prediction(run, tiny_data):
    config, run_dir, _ = run
    cfg, module = load_module(run_dir / "checkpoints/last.ckpt", config)
    predictor = Predictor([module], inference_options(cfg))
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    low = predictor(image, {"gsd": torch.tensor([0.1])})["mask"]
    high = predictor(image, {"gsd": torch.tensor([50.0])})["mask"]
    assert not torch.allclose(low, high)


def test_predict_without_the_inputs_csv_says_what_to_give(run, tiny_data, tmp_path):
    config, run_dir, _ = run
    cfg, module = load_module(run_dir / "checkpoints/last.ckpt", config)
    predictor = Predictor([module], inference_options(cfg))
    with pytest.raises(ValueError, match="extra inputs \\['gsd'\\].*--inputs"):
        predict_folder(cfg, predictor, tiny_data / "val" / "images", tmp_path / "out")
