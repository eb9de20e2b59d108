"""Train-start validation covers data.pseudo: its images are decoded and every row of its RLE CSV
is checked against its own image; `error` refuses to start naming the file, `skip` trains without
the bad pseudo images. Also `podium check` on pseudo data and a broken CSV printed once."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import podium.workflows.fit as fit
from podium.build.validation import pseudo_samples, validated_samples
from podium.cli import app
from podium.config import load_config
from podium.data.errors import DataError
from podium.data.rle import rle_encode
from podium.data.rle_csv import read_rle_csv, write_rle_csv

SHAPE = (32, 32)  # 1024 pixels
runner = CliRunner()


def _images(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 256, SHAPE, dtype=np.uint8))


@pytest.fixture()
def data(tmp_path) -> Path:
    """images/ + train.csv (10 labelled), pseudo/ + pseudo.csv (4 pseudo-labelled), all clean."""
    root = tmp_path / "data"
    mask = np.zeros(SHAPE, np.uint8)
    mask[4:12, 6:20] = 1
    train = [f"t{i}.png" for i in range(10)]
    _images(root / "images", train, seed=0)
    write_rle_csv(
        root / "train.csv", [(n, 1 + i % 4, rle_encode(mask)) for i, n in enumerate(train)]
    )
    pseudo = [f"p{i}.png" for i in range(4)]
    _images(root / "pseudo", pseudo, seed=1)
    write_rle_csv(root / "pseudo.csv", [(n, 2, rle_encode(mask)) for n in pseudo])
    return root


def _raw(root: Path, out: Path, policy: str) -> dict:
    return {
        "experiment": "pseudo",
        "seed": 4,
        "output_dir": str(out),
        "data": {
            "format": "rle_csv",
            "images": str(root / "images"),
            "csv": str(root / "train.csv"),
            "val_fraction": 0.2,
            "classes": ["a", "b", "c", "d"],
            "ignore_index": None,
            "batch_size": 4,
            "num_workers": 0,
            "validation": policy,
            "mean": [0.5],
            "std": [0.25],
            "pseudo": {
                "images": str(root / "pseudo"),
                "csv": str(root / "pseudo.csv"),
                "fraction": 0.25,
                "sample_rate": 1.0,
            },
        },
        "model": {
            "encoder_name": "resnet18",
            "encoder_weights": None,
            "in_channels": 1,
            "kwargs": {"decoder_channels": [16, 8, 8, 8, 8]},
        },
        "heads": {"mask": {"classes": 4, "activation": "sigmoid"}},
        "trainer": {"max_epochs": 1, "progress_bar": False, "log_every_n_steps": 1},
    }


def _config(root: Path, tmp_path: Path, policy: str = "error"):
    return load_config(raw=_raw(root, tmp_path / "runs", policy))


def _corrupt(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(2).bytes(64))


def _append_row(csv: Path, row: str) -> None:
    with csv.open("a") as handle:
        handle.write(row + "\n")


@pytest.fixture()
def built(monkeypatch) -> list:
    """The (config, samples, pseudo) each `train` builds its DataModule from."""
    calls: list = []
    build = fit.build_datamodule

    def spy(config, samples=None, pseudo=None):
        calls.append((config, samples, pseudo))
        return build(config, samples, pseudo)

    monkeypatch.setattr(fit, "build_datamodule", spy)
    return calls


def test_pseudo_samples_are_the_images_the_csv_names(data, tmp_path):
    (data / "pseudo/unlisted.png").write_bytes(b"junk: not in the pool, not checked")
    samples = pseudo_samples(_config(data, tmp_path))
    assert [s.image for s in samples] == [data / f"pseudo/p{i}.png" for i in range(4)]
    assert all(s.mask is None for s in samples)
    assert validated_samples(_config(data, tmp_path), "pseudo", "error", tmp_path / "c") == samples


def test_error_refuses_to_start_on_a_corrupt_pseudo_image(data, tmp_path, built):
    bad = data / "pseudo/p1.png"
    _corrupt(bad)
    config = _config(data, tmp_path)
    with pytest.raises(DataError, match="data validation failed") as error:
        fit.train(config)
    assert f"{bad} [corrupt_image]" in str(error.value)
    assert not built  # refused before any dataset was built
    report = tmp_path / "runs/pseudo/.validation/validation-pseudo.txt"
    assert str(bad) in report.read_text()


def test_skip_trains_without_the_corrupt_pseudo_image(data, tmp_path, built, capsys):
    _corrupt(data / "pseudo/p1.png")
    config = _config(data, tmp_path, "skip")
    run_dir = fit.train(config)
    assert "data validation (pseudo): skipping 1 of 4 samples" in capsys.readouterr().out
    assert (run_dir / "checkpoints/last.ckpt").is_file()
    ((build_config, samples, pseudo_samples_kept),) = built
    pseudo = _pseudo_set(build_config, samples, pseudo_samples_kept)
    assert pseudo.ids == ["p0.png", "p2.png", "p3.png"]
    assert pseudo.labels == read_rle_csv(data / "pseudo.csv")  # p1's rows are never read
    assert (tmp_path / "runs/pseudo/.validation/validation-pseudo.txt").is_file()


def test_clean_pseudo_data_builds_from_the_config_itself(data, tmp_path, built):
    config = _config(data, tmp_path, "skip")
    run_dir = fit.train(config)
    ((build_config, samples, pseudo),) = built
    assert build_config is config and (run_dir / "checkpoints/last.ckpt").is_file()
    assert _pseudo_set(build_config, samples, pseudo).ids == [f"p{i}.png" for i in range(4)]


def _pseudo_set(config, samples, pseudo):
    from podium.build import dataset_for

    return dataset_for(config, "train", samples=samples[0], pseudo=pseudo).datasets[1]


def test_a_pseudo_rle_past_its_image_is_caught(data, tmp_path):
    # p3 is 32×32 = 1024 pixels: this run ends past the last one.
    _append_row(data / "pseudo.csv", "p3.png,4,1000 100")
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        validated_samples(_config(data, tmp_path), "pseudo", "error", cache)
    message = str(error.value)
    assert "ImageId='p3.png', ClassId=4" in message and "past the last pixel" in message
    assert str(data / "pseudo.csv") in message
    kept = validated_samples(_config(data, tmp_path, "skip"), "pseudo", "skip", cache)
    assert [s.name for s in kept] == ["p0", "p1", "p2"]


def test_a_broken_pseudo_csv_stops_training_under_both_policies(data, tmp_path, built):
    _append_row(data / "pseudo.csv", "ghost.png,1,1 2")
    for policy in ("error", "skip"):
        with pytest.raises(DataError, match="unknown ImageId 'ghost.png'"):
            fit.train(_config(data, tmp_path, policy))
    assert not built


def test_skip_refuses_when_no_pseudo_image_is_left(data, tmp_path):
    for image in (data / "pseudo").iterdir():
        _corrupt(image)
    with pytest.raises(
        DataError, match=r"\(pseudo\): every sample has problems.*none is left after skipping"
    ):
        validated_samples(_config(data, tmp_path, "skip"), "pseudo", "skip", tmp_path / "c")


def test_off_does_not_look_at_pseudo_images(data, tmp_path):
    _corrupt(data / "pseudo/p1.png")
    config = _config(data, tmp_path, "off")
    samples, pseudo = fit._validated(config, None)
    assert samples is None and pseudo is None  # the build mixes in every image the CSV names


# --- podium check -----------------------------------------------------------------------------


def _write_config(root: Path, tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(root, tmp_path / "runs", "error")))
    return path


def test_check_covers_the_pseudo_images_and_csv(data, tmp_path):
    _corrupt(data / "pseudo/p1.png")
    _append_row(data / "pseudo.csv", "p3.png,4,1000 100")
    config = _write_config(data, tmp_path)
    result = runner.invoke(app, ["check", "-c", str(config), "--output", str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output
    assert "train: 0 of 8 samples have problems\n" in result.output
    assert "pseudo: 2 of 4 samples have problems" in result.output
    report = (tmp_path / "rep/validation-pseudo.txt").read_text()
    assert "p1.png" in report and "corrupt_image" in report
    assert "ImageId='p3.png', ClassId=4" in report


def test_check_prints_a_broken_labels_csv_once(data, tmp_path):
    _append_row(data / "train.csv", "ghost.png,1,1 2")
    config = _write_config(data, tmp_path)
    result = runner.invoke(app, ["check", "-c", str(config), "--output", str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    train = next(line for line in lines if line.startswith("train: "))
    val = next(line for line in lines if line.startswith("val: "))
    assert "rle_csv: 1" in train and result.output.count("rle_csv") == 1
    assert val.startswith("val: 0 of 2 samples have problems;")
    assert f"{data / 'train.csv'}" in val and "listed under train" in val
    assert "pseudo: 0 of 4 samples have problems" in result.output  # its own CSV is fine
    # Both splits' report files still hold it; training still refuses under both policies.
    for split in ("train", "val"):
        assert "ghost.png" in (tmp_path / f"rep/validation-{split}.txt").read_text()
    for policy in ("error", "skip"):
        with pytest.raises(DataError, match="unknown ImageId 'ghost.png'"):
            fit.train(load_config(raw=_raw(data, tmp_path / "runs", policy)))
