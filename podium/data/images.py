"""Reading images and masks as uint8 arrays, strictly (a bad file raises, naming it)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from podium.data.errors import DataError

__all__ = ["check_mask_size", "decode_mask", "read_image", "read_mask", "validate_class_ids"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: Path, channels: int = 3) -> np.ndarray:
    """H×W×channels uint8 (RGB order for 3 channels)."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise DataError(f"cannot read image {path}: missing, empty, corrupt or unsupported format")
    if channels == 1:
        return image[:, :, None]
    if channels != 3:
        raise DataError(f"{path}: in_channels={channels} is not supported for ordinary images")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(
    path: Path,
    num_classes: int,
    ignore_index: int | None,
    palette: list[tuple[int, int, int]] | None = None,
    ignore_color: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """H×W uint8 class ids; palette masks are mapped through `palette`; bad ids raise."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.array(image)  # a writable copy: torch warns on read-only arrays
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"cannot read mask {path}: {error}") from None
    mask = decode_mask(array, mode, path, palette, ignore_index, ignore_color)
    validate_class_ids(mask, num_classes, ignore_index, path)
    return mask


def decode_mask(array, mode, path, palette, ignore_index, ignore_color) -> np.ndarray:
    """PIL array → H×W class ids. 'P' and grey images already hold ids."""
    if palette is None:
        if array.ndim != 2:
            raise DataError(
                f"mask {path} has {array.shape[-1]} channels (mode {mode}) but "
                "data.mask_encoding is 'index': set mask_encoding: palette and list the palette"
            )
        return array.astype(np.uint8, copy=False) if array.max(initial=0) < 256 else array
    if array.ndim != 3 or array.shape[-1] < 3:
        raise DataError(f"mask {path} is not an RGB image (mode {mode}) but a palette is declared")
    return colours_to_ids(array[..., :3], palette, ignore_index, ignore_color, path)


def colours_to_ids(rgb, palette, ignore_index, ignore_color, path) -> np.ndarray:
    """H×W×3 uint8 → H×W class ids; a colour outside the palette raises, naming it."""
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    if ignore_color is not None and ignore_index is not None:
        r, g, b = ignore_color
        lut[(r << 16) | (g << 8) | b] = ignore_index
    keys = np.array(sorted(lut), dtype=np.int32)
    values = np.array([lut[k] for k in keys], dtype=np.uint8)
    pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    unknown = keys[pos] != code
    if unknown.any():
        y, x = np.argwhere(unknown)[0]
        colour = tuple(int(c) for c in rgb[y, x])
        raise DataError(
            f"mask {path}: colour {colour} at (row {y}, col {x}) is not in data.palette "
            f"({int(unknown.sum())} such pixels); add it to the palette or set ignore_color"
        )
    return values[pos]


def validate_class_ids(mask: np.ndarray, num_classes: int, ignore_index: int | None, path) -> None:
    bad = mask >= num_classes
    if ignore_index is not None:
        bad &= mask != ignore_index
    if bad.any():
        values = sorted(int(v) for v in np.unique(mask[bad]))[:10]
        raise DataError(
            f"mask {path} holds class ids {values} outside 0..{num_classes - 1}"
            + (f" and not the ignore index {ignore_index}" if ignore_index is not None else "")
            + "; fix the mask or data.classes / data.ignore_index"
        )


def check_mask_size(mask: np.ndarray, image: np.ndarray, mask_path, image_path) -> np.ndarray:
    """Return `mask` if it has the image's height and width, else raise naming both files."""
    if mask.shape[:2] != image.shape[:2]:
        raise DataError(
            f"mask {mask_path} is {mask.shape[1]}×{mask.shape[0]} but image {image_path} "
            f"is {image.shape[1]}×{image.shape[0]} (width×height)"
        )
    return mask
