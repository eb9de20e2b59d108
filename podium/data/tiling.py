"""Multi-scale overlapping training tiles, cut on the fly (no tile files on disk).

Each image is rescaled by every factor in `scales`; on the rescaled image, tile×tile windows
step by tile·(1 − overlap) and the last window in each direction is moved flush with the
border, so every pixel of every scale lies in at least one window. An image smaller than the
tile at some scale gets one window at (0, 0), padded (image 0, mask ignore_index).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import albumentations as A
import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from podium.data.dataset import compact_mask, input_tensors
from podium.data.errors import DataError
from podium.data.images import check_mask_size, read_image
from podium.data.sample import Sample
from podium.data.sample_keys import SampleKey, seed_transform

if TYPE_CHECKING:
    from podium.data.cache import DecodedCache

__all__ = [
    "TileIndex",
    "TiledDataset",
    "Window",
    "crop_padded",
    "image_sizes",
    "rescale",
    "scaled_size",
    "tile_name",
    "tile_windows",
    "window_starts",
]

_EXIF_ORIENTATION = 0x0112


class Window(NamedTuple):
    """One tile: which sample, at which scale, top-left corner on the rescaled image."""

    sample: int
    scale: float
    y: int
    x: int


def window_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tile-long windows covering 0..length-1, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, round(tile * (1.0 - overlap)))
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(H, W) of an image rescaled by `scale`, at least 1×1."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def image_sizes(paths: Sequence[Path]) -> list[tuple[int, int]]:
    """(H, W) of each image as OpenCV decodes it, from the header only (nothing is decoded)."""
    sizes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
                # cv2.imread applies the EXIF orientation; tags 5-8 swap width and height.
                if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                    width, height = height, width
        except OSError as error:
            raise DataError(f"cannot read the size of image {path}: {error}") from None
        sizes.append((height, width))
    return sizes


def tile_windows(
    sizes: Sequence[tuple[int, int]], scales: Sequence[float], tile: int, overlap: float
) -> np.ndarray:
    """K×4 int64 rows (sample, scale index, y, x) for all windows of all (H, W) sizes."""
    rows = []
    for index, (height, width) in enumerate(sizes):
        for k, scale in enumerate(scales):
            h, w = scaled_size(height, width, scale)
            ys, xs = window_starts(h, tile, overlap), window_starts(w, tile, overlap)
            grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)
            rows.append(np.column_stack([np.full((len(grid), 2), (index, k)), grid]))
    # One array, not a list of tuples: forked DataLoader workers then share its pages instead
    # of copying them as reference counts change.
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 4), np.int64)


class TileIndex:
    """The windows of a list of images, computed from their sizes on first use."""

    def __init__(
        self, paths: Sequence[Path], scales: Sequence[float], tile: int, overlap: float
    ) -> None:
        if tile < 1:
            raise ValueError(f"tile must be a positive number of pixels, got {tile}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive factors, got {list(scales)}")
        self.paths = list(paths)
        self.scales = [float(s) for s in scales]
        self.tile = tile
        self.overlap = overlap

    @cached_property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) per image, read from headers once."""
        return image_sizes(self.paths)

    @cached_property
    def windows(self) -> np.ndarray:
        """K×4 (sample, scale index, y, x): image by image, scale by scale, row by row."""
        return tile_windows(self.sizes, self.scales, self.tile, self.overlap)

    def padded(self) -> bool:
        """Whether some image is smaller than the tile at some scale (so windows get padded)."""
        return any(
            min(scaled_size(h, w, s)) < self.tile for h, w in self.sizes for s in self.scales
        )

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Window:
        sample, scale, y, x = (int(v) for v in self.windows[index])
        return Window(sample, self.scales[scale], y, x)


def rescale(
    image: np.ndarray, mask: np.ndarray | None, scale: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Image (INTER_AREA) and mask (INTER_NEAREST, ids stay ids) rescaled by `scale`."""
    if scale == 1.0:
        return image, mask
    h, w = scaled_size(image.shape[0], image.shape[1], scale)
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    out = out.reshape(h, w, image.shape[2])  # cv2 drops a single channel axis
    if mask is not None:
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return out, mask


def crop_padded(array: np.ndarray, y: int, x: int, tile: int, fill: int) -> np.ndarray:
    """tile×tile(×C) crop at (y, x); the part past the border is `fill`."""
    crop = array[y : y + tile, x : x + tile]
    if crop.shape[:2] == (tile, tile):
        return np.ascontiguousarray(crop)
    out = np.full((tile, tile, *array.shape[2:]), fill, dtype=array.dtype)
    out[: crop.shape[0], : crop.shape[1]] = crop
    return out


def tile_name(stem: str, window: Window) -> str:
    """`stem@s0.5_y128_x256`: the sample name, scale and window corner."""
    return f"{stem}@s{window.scale:g}_y{window.y}_x{window.x}"


class TiledDataset(Dataset):
    """Yields one window per item: {"image": C×t×t uint8, target_key: t×t uint8, "name"}
    (+ "inputs": {name: (n,) float32} when `inputs` declares extra model inputs).

    Same format as SegmentationDataset: the mask stays uint8 (int16 past 255) for the workers
    and is cast to int64 on the device.

    The image is read and rescaled for each window, so very large images with many windows cost
    one decode per window, unless `data.cache: ram` decoded them once beforehand.
    """

    def __init__(
        self,
        samples: list[Sample],
        read_mask: Callable[[Path], np.ndarray] | None,
        scales: Sequence[float] = (1.0,),
        tile: int = 512,
        overlap: float = 0.25,
        transform: A.Compose | None = None,
        channels: int = 3,
        target_key: str = "mask",
        ignore_index: int | None = None,
        inputs: Mapping[str, int] | None = None,
    ) -> None:
        self.samples = samples
        self.read_mask = read_mask
        self.index = TileIndex([s.image for s in samples], scales, tile, overlap)
        self.transform = transform
        self.channels = channels
        self.target_key = target_key
        self.ignore_index = ignore_index
        self.inputs = dict(inputs or {})  # extra model inputs: every window of a sample shares them
        self.cache: DecodedCache | None = None  # data.cache: ram (podium.data.cache)

    def __len__(self) -> int:
        return self._length

    def cache_files(self) -> list[tuple[Path, Path | None]]:
        """(image, mask or None) per sample: what data.cache: ram decodes."""
        with_masks = self.read_mask is not None
        return [(s.image, s.mask if with_masks else None) for s in self.samples]

    @cached_property
    def _length(self) -> int:
        """Window count, after checking that padding has a label to take."""
        if self.ignore_index is None and self.read_mask is not None and self.index.padded():
            raise DataError(
                f"some images are smaller than the {self.index.tile}-pixel tile at scales "
                f"{self.index.scales}; set an ignore_index so the padding is left out of the loss"
            )
        return len(self.index)

    def __getitem__(self, key: SampleKey) -> dict:
        """An int or an (index, seed) key that reseeds the transform (podium.data.sample_keys)."""
        window = self.index[seed_transform(self.transform, key)]
        sample = self.samples[window.sample]
        image, mask = rescale(*self._read(window.sample), window.scale)
        tile = self.index.tile
        image = crop_padded(image, window.y, window.x, tile, 0)
        if mask is not None:
            fill = 0 if self.ignore_index is None else self.ignore_index
            mask = crop_padded(mask, window.y, window.x, tile, fill)
        if self.transform is not None:
            data = {"image": image} if mask is None else {"image": image, "mask": mask}
            out = self.transform(**data)
            image, mask = out["image"], out.get("mask")
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "name": tile_name(sample.name, window),
        }
        if mask is not None:
            item[self.target_key] = torch.from_numpy(compact_mask(mask))
        if self.inputs:
            item["inputs"] = input_tensors(sample, self.inputs)
        return item

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Sample `index`'s image and mask (None without one); sizes must match the index."""
        if self.cache is not None:  # filled with the same header sizes the windows use
            return self.cache.image(index), self.cache.mask(index)
        sample = self.samples[index]
        image = read_image(sample.image, self.channels)
        if image.shape[:2] != self.index.sizes[index]:
            # The windows were cut for the header's size; a different decode would misplace them.
            raise DataError(
                f"image {sample.image} decodes to {image.shape[:2]} (H, W) but its header says "
                f"{self.index.sizes[index]}"
            )
        if sample.mask is None or self.read_mask is None:
            return image, None
        return image, check_mask_size(self.read_mask(sample.mask), image, sample.mask, sample.image)
