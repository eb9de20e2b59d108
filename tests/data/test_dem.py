"""Tests for podium.data.dem: tiles of matplotlib's Jacksboro DEM, checked against the npz."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.cbook import get_sample_data
from PIL import Image

from podium.data.dem import make_dem_dataset, split_tile_columns

TILE = 32


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The npz elevation (H, W) in metres, read here independently of the module."""
    return get_sample_data("jacksboro_fault_dem.npz")["elevation"].astype(np.float64)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("dem")
    return root, make_dem_dataset(root)


def _tile(grid: np.ndarray, stem: str, tile: int = TILE) -> np.ndarray:
    row, col = (int(part[1:]) for part in stem.split("_"))
    return grid[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile]


def _stems(root: Path, split: str, sub: str = "images") -> list[str]:
    return sorted(p.stem for p in (root / split / sub).glob("*.png"))


def _read_heights(path: Path) -> np.ndarray:
    heights = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert heights.dtype == np.uint16 and heights.ndim == 2
    return heights


def test_returns_the_folder_data_section(built, reference) -> None:
    root, data = built
    root = root.resolve()
    assert data == {
        "format": "folder",
        "classes": ["low", "mid", "high"],
        "train": {"images": str(root / "train/images"), "masks": str(root / "train/masks")},
        "val": {"images": str(root / "val/images"), "masks": str(root / "val/masks")},
        "targets": {
            "height": {
                "dir": "heights",
                "scale": 0.02,
                "offset": float(reference.min()),
                "nodata": 65535,
            }
        },
    }


def test_tile_counts_sizes_and_a_band_of_columns_for_val(built, reference) -> None:
    root, _ = built
    rows, cols = reference.shape[0] // TILE, reference.shape[1] // TILE
    train, val = _stems(root, "train"), _stems(root, "val")
    assert (len(train), len(val)) == (rows * (cols - 3), rows * 3)  # 25 % of 12 columns
    assert {f"r{r:02d}_c{c:02d}" for r in range(rows) for c in range(cols)} == {*train, *val}
    val_cols = sorted({int(s.split("_c")[1]) for s in val})
    assert val_cols == list(range(val_cols[0], val_cols[0] + 3))
    for split, stems in (("train", train), ("val", val)):
        for sub in ("heights", "masks"):
            assert _stems(root, split, sub) == stems
        image = Image.open(root / split / "images" / f"{stems[0]}.png")
        mask = Image.open(root / split / "masks" / f"{stems[0]}.png")
        assert (image.mode, image.size, mask.mode, mask.size) == ("RGB", (32, 32), "L", (32, 32))


def test_heights_decode_to_the_npz_elevation(built, reference) -> None:
    root, data = built
    target = data["targets"]["height"]
    nodata_tiles = {}
    for split in ("train", "val"):
        for stem in _stems(root, split):
            heights = _read_heights(root / split / "heights" / f"{stem}.png")
            valid = heights != target["nodata"]
            metres = heights * target["scale"] + target["offset"]
            np.testing.assert_allclose(metres[valid], _tile(reference, stem)[valid], atol=1e-6)
            if not valid.all():
                nodata_tiles[(split, stem)] = int((~valid).sum())
    # One tile per split holds a 3 x 3 no-data block.
    assert sorted(split for split, _ in nodata_tiles) == ["train", "val"]
    assert set(nodata_tiles.values()) == {9}


def test_heights_read_the_same_with_pillow(built) -> None:
    root, _ = built
    path = next((root / "val" / "heights").glob("*.png"))
    with Image.open(path) as image:
        pillow = np.array(image).astype(np.uint16)
    np.testing.assert_array_equal(pillow, _read_heights(path))


def test_mask_bands_are_the_elevation_tertiles(built, reference) -> None:
    root, _ = built
    low, high = np.quantile(reference, [1 / 3, 2 / 3])
    seen = {}
    for split in ("train", "val"):
        for stem in _stems(root, split):
            mask = np.array(Image.open(root / split / "masks" / f"{stem}.png"))
            z = _tile(reference, stem)
            expected = np.where(z < low, 0, np.where(z < high, 1, 2))
            np.testing.assert_array_equal(mask, expected)
            seen.setdefault(split, set()).update(np.unique(mask).tolist())
    assert seen == {"train": {0, 1, 2}, "val": {0, 1, 2}}


def _mosaic(root: Path, reference: np.ndarray) -> np.ndarray:
    """All image tiles put back on the grid (grey channel); uncovered edges stay NaN."""
    grey = np.full(reference.shape, np.nan)
    for split in ("train", "val"):
        for stem in _stems(root, split):
            rgb = np.array(Image.open(root / split / "images" / f"{stem}.png"))
            assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
            _tile(grey, stem)[:] = rgb[..., 0]
    return grey


def test_hillshade_is_lit_from_the_north_west(built, reference) -> None:
    root, _ = built
    grey = _mosaic(root, reference)
    # Row 0 is north. A slope rising to the south-east faces the north-west light.
    rise_east = np.gradient(reference, axis=1)
    rise_south = np.gradient(reference, axis=0)
    covered = ~np.isnan(grey)
    facing = (rise_east + rise_south)[covered]
    assert np.corrcoef(grey[covered], facing)[0, 1] > 0.7
    assert grey[covered].std() > 20


def test_hillshade_is_shaded_once_on_the_whole_grid(built, reference) -> None:
    root, _ = built
    grey = _mosaic(root, reference)
    tiles = [_tile(grey, s) for split in ("train", "val") for s in _stems(root, split)]
    assert len({t.tobytes() for t in tiles}) == len(tiles)
    # One normalisation for the grid: the full 0..255 range overall, but few tiles span it.
    assert np.nanmin(grey) <= 5 and np.nanmax(grey) >= 250
    assert sum(t.min() == 0 and t.max() == 255 for t in tiles) < len(tiles) // 4


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_a_second_call_rewrites_identical_files(built) -> None:
    root, data = built
    before = _files(root)
    assert make_dem_dataset(root) == data
    assert _files(root) == before


def test_deterministic_for_a_seed_and_another_seed_leaves_no_stale_tile(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    make_dem_dataset(first, tile=64, seed=0)
    make_dem_dataset(second, tile=64, seed=0)
    assert _files(first) == _files(second)
    # A seed whose band of val columns differs from seed 0's (6 columns of 64-pixel tiles).
    band = split_tile_columns(6, 0.25, 0)
    seed = next(s for s in range(1, 50) if split_tile_columns(6, 0.25, s) != band)
    make_dem_dataset(first, tile=64, seed=seed)
    train, val = _stems(first, "train"), _stems(first, "val")
    assert val != _stems(second, "val")
    assert not set(train) & set(val) and len(train) + len(val) == 5 * 6
    for split in ("train", "val"):
        for sub in ("heights", "masks"):
            assert _stems(first, split, sub) == _stems(first, split)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"val_fraction": 0.0}, "empty"), ({"tile": 400}, "tile")]
)
def test_bad_arguments_are_refused(tmp_path, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_dem_dataset(tmp_path, **kwargs)
