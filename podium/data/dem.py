"""A small real elevation dataset from matplotlib's Jacksboro fault DEM: hillshade → height + bands.

matplotlib ships `jacksboro_fault_dem.npz`: a 344 x 403 grid of elevations in whole metres
(236 to 1076 m) at 3 arc-seconds (`dx`, `dy` in degrees), row 0 at the north edge.
`make_dem_dataset` cuts it into non-overlapping tiles and writes one folder dataset that a mask
head and a dense head train on together:

    root/train/images/r03_c07.png    hillshade, 8-bit RGB (grey in all three channels)
    root/train/heights/r03_c07.png   elevation, 16-bit: metres = value * 0.02 + offset
    root/train/masks/r03_c07.png     8-bit class ids: 0 low, 1 mid, 2 high (global tertiles)
    root/val/...                     same layout

Stems are `r<row>_c<col>` in the tile grid; tile (r, c) holds grid pixels
[r*tile, (r+1)*tile) x [c*tile, (c+1)*tile). Rows and columns that do not fill a whole tile are
dropped at the south and east edges.

Heights are stored in steps of 2 cm (scale 0.02) above the grid's minimum (offset, in metres):
at 1 cm the 840 m relief would need 84,000 codes, past uint16. The DEM's whole metres are kept
exactly. 65535 is no-data: a 3 x 3 block of one train and one val tile is set to it, so loaders
and heads exercise their no-data path (the mask keeps the true band there).

Validation is a band of whole tile columns (its position drawn from `seed`), not a shuffle of
tiles: neighbouring tiles of a DEM share ridges and valleys, so randomly scattered val tiles
would be scored on terrain the model saw across a tile edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.cbook import get_sample_data
from matplotlib.colors import LightSource

from podium.io import atomic_write_bytes, write_mask_png, write_rgb_png

__all__ = [
    "CLASSES",
    "HEIGHT_NODATA",
    "HEIGHT_SCALE",
    "elevation_bands",
    "encode_heights",
    "hillshade_rgb",
    "relief_rgb",
    "load_jacksboro_dem",
    "make_dem_dataset",
    "split_tile_columns",
    "tile_stem",
]

CLASSES: tuple[str, ...] = ("low", "mid", "high")
HEIGHT_SCALE = 0.02  # metres per stored unit (2 cm)
HEIGHT_NODATA = 65535
_METRES_PER_DEGREE = 111_200.0  # as in matplotlib's own hillshading example for this DEM
_NODATA_BLOCK = 3
_SPLIT_DIRS = ("images", "heights", "masks")


def load_jacksboro_dem() -> tuple[np.ndarray, float, float]:
    """The bundled DEM: (H, W) float64 elevation in metres, and dx, dy pixel sizes in metres."""
    dem = get_sample_data("jacksboro_fault_dem.npz")
    elevation = dem["elevation"].astype(np.float64)
    latitude = np.radians((float(dem["ymin"]) + float(dem["ymax"])) / 2)
    dx = _METRES_PER_DEGREE * float(dem["dx"]) * float(np.cos(latitude))
    dy = _METRES_PER_DEGREE * float(dem["dy"])
    return elevation, dx, dy


def hillshade_rgb(elevation: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """(H, W) metres → (H, W, 3) uint8 hillshade, light from the north-west at 45° elevation.

    Computed on the whole grid so that tiles cut from it agree along their borders.
    """
    shade = LightSource(azdeg=315, altdeg=45).hillshade(elevation, vert_exag=1, dx=dx, dy=dy)
    grey = np.rint(np.clip(shade, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def relief_rgb(elevation: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """(H, W) metres → (H, W, 3) uint8 shaded relief: a terrain colour map (elevation) lit
    like `hillshade_rgb` (slope), the way printed maps draw a DEM."""
    low, high = float(elevation.min()), float(elevation.max())
    light = LightSource(azdeg=315, altdeg=45)
    rgb = light.shade(
        elevation,
        cmap=colormaps["gist_earth"],
        blend_mode="soft",
        vert_exag=1,
        dx=dx,
        dy=dy,
        vmin=low,
        vmax=high,
    )[..., :3]
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def elevation_bands(elevation: np.ndarray) -> np.ndarray:
    """(H, W) metres → (H, W) uint8 class ids: 0 below the 1/3 quantile, 2 from the 2/3 one."""
    low, high = np.quantile(elevation, [1 / 3, 2 / 3])
    return np.digitize(elevation, [low, high]).astype(np.uint8)


def encode_heights(elevation: np.ndarray, offset: float) -> np.ndarray:
    """(h, w) metres → (h, w) uint16 codes, metres = code * HEIGHT_SCALE + offset."""
    codes = np.rint((elevation - offset) / HEIGHT_SCALE)
    if codes.min() < 0 or codes.max() >= HEIGHT_NODATA:
        raise ValueError(
            f"elevations {elevation.min():g}..{elevation.max():g} m do not fit uint16 at "
            f"scale {HEIGHT_SCALE} above offset {offset:g}"
        )
    return codes.astype(np.uint16)


def split_tile_columns(columns: int, val_fraction: float, seed: int) -> set[int]:
    """The tile columns held out for validation: a contiguous band placed by `seed`."""
    count = int(round(columns * val_fraction))
    if not 0 < count < columns:
        raise ValueError(
            f"val_fraction {val_fraction} of {columns} tile columns leaves a split empty"
        )
    start = int(np.random.default_rng(seed).integers(0, columns - count + 1))
    return set(range(start, start + count))


def tile_stem(row: int, col: int) -> str:
    return f"r{row:02d}_c{col:02d}"


def _nodata_pixels(rng: np.random.Generator, tile: int) -> tuple[slice, slice]:
    """A seeded _NODATA_BLOCK-pixel square inside a tile."""
    top, left = rng.integers(0, tile - _NODATA_BLOCK + 1, size=2)
    return slice(int(top), int(top) + _NODATA_BLOCK), slice(int(left), int(left) + _NODATA_BLOCK)


def _write_tile(
    folder: Path, stem: str, image: np.ndarray, heights: np.ndarray, mask: np.ndarray
) -> None:
    write_rgb_png(folder / "images" / f"{stem}.png", image)
    ok, encoded = cv2.imencode(".png", heights)
    if not ok:
        raise OSError(f"could not encode the heights of tile {stem}")
    atomic_write_bytes(folder / "heights" / f"{stem}.png", encoded.tobytes())
    write_mask_png(folder / "masks" / f"{stem}.png", mask, palette=None)


def _remove_stale(folder: Path, stems: set[str]) -> None:
    """Delete PNGs of an earlier build with other arguments, so no tile sits in both splits."""
    for sub in _SPLIT_DIRS:
        for path in (folder / sub).glob("*.png"):
            if path.stem not in stems:
                path.unlink()


def make_dem_dataset(
    root: Path,
    tile: int = 32,
    val_fraction: float = 0.25,
    seed: int = 0,
    image: Literal["hillshade", "relief"] = "hillshade",
) -> dict:
    """Write the tiled DEM under root/{train,val}/{images,heights,masks}; returns its `data:`.

    image: `hillshade` (grey: slope and aspect only, so absolute height must be inferred from
    the terrain's texture, a hard task) or `relief` (hillshade over a terrain colour map: the
    colour tells the height band, learnable in a CPU test).

    Deterministic for given arguments; a second call rewrites identical files. PNGs in those
    folders that this call does not write (an earlier build with other arguments) are removed.
    """
    elevation, dx, dy = load_jacksboro_dem()
    if not 8 <= tile <= min(elevation.shape):
        raise ValueError(f"tile must be 8..{min(elevation.shape)} pixels, got {tile}")
    rows, cols = elevation.shape[0] // tile, elevation.shape[1] // tile
    offset = float(elevation.min())
    render = {"hillshade": hillshade_rgb, "relief": relief_rgb}
    if image not in render:
        raise ValueError(f"image must be one of {sorted(render)}, got {image!r}")
    pictures, heights = render[image](elevation, dx, dy), encode_heights(elevation, offset)
    masks = elevation_bands(elevation)
    val_cols = split_tile_columns(cols, val_fraction, seed)
    rng = np.random.default_rng([seed, 1])
    root = Path(root).resolve()
    stems: dict[str, set[str]] = {"train": set(), "val": set()}
    for row in range(rows):
        for col in range(cols):
            split = "val" if col in val_cols else "train"
            window = np.s_[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile]
            tile_heights = heights[window].copy()
            if not stems[split]:  # the first tile of each split gets a no-data block
                tile_heights[_nodata_pixels(rng, tile)] = HEIGHT_NODATA
            stem = tile_stem(row, col)
            _write_tile(root / split, stem, pictures[window], tile_heights, masks[window])
            stems[split].add(stem)
    for split, names in stems.items():
        _remove_stale(root / split, names)
    return _data_section(root, offset)


def _data_section(root: Path, offset: float) -> dict:
    """The raw `data:` config section for the folders under root."""
    splits = {
        s: {"images": str(root / s / "images"), "masks": str(root / s / "masks")}
        for s in ("train", "val")
    }
    return {
        "format": "folder",
        "classes": list(CLASSES),
        **splits,
        "targets": {
            "height": {
                "dir": "heights",
                "scale": HEIGHT_SCALE,
                "offset": offset,
                "nodata": HEIGHT_NODATA,
            }
        },
    }
