"""Tiles: windows cover every pixel at every scale, stay in bounds, and tiles keep alignment."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from podium.data.errors import DataError
from podium.data.formats import Sample
from podium.data.images import read_mask
from podium.data.tiling import (
    TiledDataset,
    TileIndex,
    scaled_size,
    tile_windows,
    window_starts,
)

TILE = 48
IGNORE = 255
RED = np.array([10, 80, 150, 220], dtype=np.uint8)  # channel 0 = this colour of the class id
SIZES = [(96, 136), (40, 50), (70, 70)]  # (40, 50) is smaller than the tile at both scales


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "starts"),
    [
        (100, 64, 0.5, [0, 32, 36]),
        (128, 64, 0.0, [0, 64]),
        (129, 64, 0.0, [0, 64, 65]),
        (64, 64, 0.25, [0]),
        (50, 64, 0.25, [0]),
        (150, 64, 0.5, [0, 32, 64, 86]),
    ],
)
def test_window_starts_by_hand(length, tile, overlap, starts) -> None:
    assert window_starts(length, tile, overlap) == starts


def test_window_count_by_hand() -> None:
    # Scale 1: 100×150 → 3 rows × 4 columns; scale 0.5: 50×75 → 1 row × 2 columns.
    windows = tile_windows([(100, 150)], [1.0, 0.5], 64, 0.5)
    assert len(windows) == 14
    assert windows[:, 1].tolist().count(1) == 2


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_windows_cover_every_pixel_and_stay_inside(overlap) -> None:
    sizes = [(1, 1), (47, 200), (48, 48), (49, 97), (333, 129)]
    scales = [1.0, 0.5, 0.3, 1.7]
    windows = tile_windows(sizes, scales, TILE, overlap)
    for index, (h, w) in enumerate(sizes):
        for k, scale in enumerate(scales):
            sh, sw = scaled_size(h, w, scale)
            cover = np.zeros((sh, sw), dtype=np.int32)
            mine = windows[(windows[:, 0] == index) & (windows[:, 1] == k)]
            for _, _, y, x in mine:
                assert y >= 0 and x >= 0
                assert y + TILE <= sh or y == 0  # only a too-small image has a window past it
                assert x + TILE <= sw or x == 0
                cover[y : y + TILE, x : x + TILE] += 1
            assert (cover > 0).all(), (h, w, scale)


def test_index_reads_sizes_lazily_from_headers(tmp_path: Path) -> None:
    index = TileIndex([tmp_path / "missing.png"], [1.0], 32, 0.0)  # nothing read yet
    with pytest.raises(DataError, match="missing.png"):
        len(index)
    Image.new("RGB", (70, 40)).save(tmp_path / "a.png")
    assert TileIndex([tmp_path / "a.png"], [1.0], 32, 0.0).sizes == [(40, 70)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tile": 0}, "tile"), ({"overlap": 1.0}, "overlap"), ({"scales": [1.0, 0.0]}, "scales")],
)
def test_index_rejects_bad_settings(kwargs, message) -> None:
    args = {"paths": [], "scales": [1.0], "tile": 32, "overlap": 0.5} | kwargs
    with pytest.raises(ValueError, match=message):
        TileIndex(**args)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    """Images of 2×2 blocks: channel 0 is the block's class colour, 1 and 2 its row and column."""
    root = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(0)
    out = []
    for i, (h, w) in enumerate(SIZES):
        blocks = rng.integers(0, 4, size=(h // 2, w // 2), dtype=np.uint8)
        rows, cols = np.indices(blocks.shape, dtype=np.uint8)
        image = np.stack([RED[blocks], rows, cols], axis=-1).repeat(2, 0).repeat(2, 1)
        cv2.imwrite(str(root / f"im{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        Image.fromarray(blocks.repeat(2, 0).repeat(2, 1)).save(root / f"m{i}.png")
        out.append(Sample(f"im{i}", root / f"im{i}.png", root / f"m{i}.png"))
    return out


def _dataset(samples, **kwargs) -> TiledDataset:
    args = {
        "read_mask": partial(read_mask, num_classes=4, ignore_index=IGNORE),
        "scales": [1.0, 0.5],
        "tile": TILE,
        "overlap": 0.25,
        "ignore_index": IGNORE,
    } | kwargs
    return TiledDataset(samples, **args)


def _corner(name: str) -> tuple[str, float, int, int]:
    stem, scale, y, x = re.fullmatch(r"(.+)@s([\d.]+)_y(\d+)_x(\d+)", name).groups()
    return stem, float(scale), int(y), int(x)


def test_tiles_have_the_size_and_stay_aligned(samples) -> None:
    dataset = _dataset(samples)
    assert len(dataset) == len(tile_windows(SIZES, [1.0, 0.5], TILE, 0.25))
    for item in dataset:
        image, mask = item["image"].numpy(), item["mask"].numpy()
        assert image.shape == (3, TILE, TILE) and mask.shape == (TILE, TILE)
        assert item["image"].dtype == torch.uint8 and item["mask"].dtype == torch.uint8
        stem, scale, y, x = _corner(item["name"])
        h, w = scaled_size(*SIZES[int(stem[2:])], scale)
        inside = np.zeros((TILE, TILE), dtype=bool)
        inside[: h - y, : w - x] = True
        # Padding: image 0, mask ignore; everywhere else the colour is the mask's class colour.
        assert (mask[~inside] == IGNORE).all() and (image[:, ~inside] == 0).all()
        assert (image[0][inside] == RED[mask[inside]]).all()
        # Channels 1 and 2 hold the block row/column: they place the tile in the image.
        block = 1.0 if scale == 0.5 else 0.5  # scale 0.5 turns each 2×2 block into a pixel
        rows, cols = np.indices((TILE, TILE))
        assert (image[1][inside] == ((y + rows) * block).astype(int)[inside]).all()
        assert (image[2][inside] == ((x + cols) * block).astype(int)[inside]).all()


def test_transform_runs_after_cropping_and_keeps_alignment(samples) -> None:
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    plain, flipped = _dataset(samples), _dataset(samples, transform=flip)
    for index in (0, 5, len(plain) - 1):
        a, b = plain[index], flipped[index]
        assert a["name"] == b["name"]
        assert (b["image"].numpy() == a["image"].numpy()[:, :, ::-1]).all()
        assert (b["mask"].numpy() == a["mask"].numpy()[:, ::-1]).all()


def test_names_and_batching(samples) -> None:
    dataset = _dataset(samples[:1], scales=[0.5], target_key="seg")
    assert [item["name"] for item in dataset] == ["im0@s0.5_y0_x0", "im0@s0.5_y0_x20"]
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["image"].shape == (2, 3, TILE, TILE) and batch["seg"].shape == (2, TILE, TILE)


def test_padding_without_ignore_index_raises(samples) -> None:
    with pytest.raises(DataError, match="set an ignore_index"):
        len(_dataset(samples, ignore_index=None))
    # 96×136 at stride 36: rows 0, 36, 48 × columns 0, 36, 72, 88; none padded.
    assert len(_dataset(samples[:1], scales=[1.0], ignore_index=None)) == 12


def test_images_without_masks_give_image_tiles(samples) -> None:
    dataset = _dataset([Sample(s.name, s.image) for s in samples], read_mask=None)
    item = dataset[0]
    assert set(item) == {"image", "name"} and item["image"].shape == (3, TILE, TILE)


def test_exif_rotated_jpeg_sizes_match_the_decoded_image(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: OpenCV decodes it 30 wide and 20 high
    Image.new("RGB", (20, 30), (90, 20, 20)).save(tmp_path / "r.jpg", exif=exif)
    assert cv2.imread(str(tmp_path / "r.jpg")).shape[:2] == (20, 30)
    assert TileIndex([tmp_path / "r.jpg"], [1.0], 8, 0.0).sizes == [(20, 30)]
    dataset = TiledDataset([Sample("r", tmp_path / "r.jpg")], None, [1.0], 8, 0.0)
    assert len(dataset) == 3 * 4 and dataset[len(dataset) - 1]["name"] == "r@s1_y12_x22"
