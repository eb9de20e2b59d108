"""Tiny synthetic segmentation datasets for tests: learnable, deterministic, written to disk.

Each sample is a noisy background (class 0) with rectangles and discs of the other classes drawn
on it; every class has one fixed colour in the image (the same for every seed and split), plus
per-pixel noise and a per-image brightness shift, so a tiny model learns the mapping in a few
epochs but cannot get it from one pixel value alone.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "class_colors",
    "make_aeroscapes_dataset",
    "make_folder_dataset",
    "render_sample",
]

AEROSCAPES_CLASSES = 12  # background, person, bike, car, drone, boat, animal, obstacle, ...
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_NOISE_STD = 18.0
_BRIGHTNESS_SHIFT = 20.0


def class_colors(num_classes: int) -> np.ndarray:
    """The fixed image colour of each class: (num_classes, 3) RGB uint8, hues evenly spaced."""
    hues = (np.arange(num_classes) * 180 // max(num_classes, 1)).astype(np.uint8)
    # Alternate the value so neighbouring hues also differ in brightness when there are many.
    values = np.where(np.arange(num_classes) % 2 == 0, 220, 140).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), values], axis=-1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate an (H, W) size of at least 8 x 8 pixels."""
    if len(size) != 2 or min(int(s) for s in size) < 8:
        raise ValueError(f"size must be (height, width), each at least 8, got {size!r}")
    return int(size[0]), int(size[1])


def render_sample(
    rng: np.random.Generator, size: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One sample: (H, W, 3) RGB uint8 image and (H, W) uint8 mask of class ids."""
    height, width = _check_size(size)
    mask = np.zeros((height, width), dtype=np.uint8)
    # Each foreground class once plus two extras, in random order (later shapes may cover
    # earlier ones, so a class can still end up small).
    shapes = list(range(1, num_classes)) + list(rng.integers(1, max(num_classes, 2), size=2))
    rng.shuffle(shapes)
    short = min(height, width)
    for cls in shapes:
        if cls >= num_classes:  # num_classes == 1: background only
            continue
        half = int(rng.integers(max(short // 10, 2), max(short // 4, 3) + 1))
        # Centres keep the whole shape inside the image, so no class is drawn only off-canvas.
        cy, cx = int(rng.integers(half, height - half)), int(rng.integers(half, width - half))
        if rng.random() < 0.5:
            cv2.rectangle(mask, (cx - half, cy - half), (cx + half, cy + half), int(cls), -1)
        else:
            cv2.circle(mask, (cx, cy), half, int(cls), -1)
    image = class_colors(num_classes)[mask].astype(np.float32)
    image += rng.normal(0.0, _NOISE_STD, size=image.shape)
    image += rng.uniform(-_BRIGHTNESS_SHIFT, _BRIGHTNESS_SHIFT)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def _add_ignore_band(rng: np.random.Generator, mask: np.ndarray, ignore_index: int) -> None:
    """Overwrite one random horizontal or vertical band of the mask with ignore_index, in place."""
    height, width = mask.shape
    if rng.random() < 0.5:
        band = max(2, height // 8)
        top = int(rng.integers(0, height - band + 1))
        mask[top : top + band] = ignore_index
    else:
        band = max(2, width // 8)
        left = int(rng.integers(0, width - band + 1))
        mask[:, left : left + band] = ignore_index


def _write_image(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) uint8 array; raises if OpenCV cannot encode it."""
    array = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(path.suffix, array)
    if not ok:
        raise OSError(f"OpenCV could not encode {path.name}")
    path.write_bytes(buf.tobytes())


def _check_classes(num_classes: int, ignore_index: int | None) -> None:
    """Class ids and the ignore value must fit one uint8 mask without colliding."""
    if not 1 <= num_classes <= 255:
        raise ValueError(f"num_classes must be in 1..255, got {num_classes}")
    if ignore_index is not None and not num_classes <= ignore_index <= 255:
        raise ValueError(f"ignore_index must be in {num_classes}..255, got {ignore_index}")


def make_folder_dataset(
    root: Path,
    n: int,
    size: tuple[int, int] = (64, 64),
    num_classes: int = 3,
    seed: int = 0,
    palette: list[tuple[int, int, int]] | None = None,
    ignore_index: int | None = None,
    image_ext: str = ".png",
    *,
    ignore_color: tuple[int, int, int] = (255, 255, 255),
) -> Path:
    """Write `n` samples as root/images/<stem><image_ext> and root/masks/<stem>.png; returns root.

    Masks are single-channel class ids, or RGB colours from `palette` when given. With
    `ignore_index`, every other mask (even indices) gets a band of ignore pixels: the value
    `ignore_index` in id masks, `ignore_color` in palette masks. `size` is (height, width).
    """
    _check_classes(num_classes, ignore_index)
    if image_ext.lower() not in _IMAGE_EXTS:
        raise ValueError(f"image_ext must be one of {_IMAGE_EXTS}, got {image_ext!r}")
    colours = None
    if palette is not None:
        colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
        if len(colours) < num_classes:
            raise ValueError(f"palette has {len(colours)} colours for {num_classes} classes")
        if ignore_index is not None and tuple(ignore_color) in {tuple(c) for c in palette}:
            raise ValueError(f"ignore_color {ignore_color} is also a palette colour")
        # Row ignore_index holds the ignore colour so a single lookup colours the whole mask.
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[:num_classes] = colours[:num_classes]
        if ignore_index is not None:
            lut[ignore_index] = ignore_color
        colours = lut
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image, mask = render_sample(rng, size, num_classes)
        if ignore_index is not None and i % 2 == 0:
            _add_ignore_band(rng, mask, ignore_index)
        stem = f"sample_{i:04d}"
        _write_image(root / "images" / f"{stem}{image_ext}", image)
        _write_image(root / "masks" / f"{stem}.png", mask if colours is None else colours[mask])
    return root


def make_aeroscapes_dataset(
    root: Path,
    n_train: int,
    n_val: int,
    size: tuple[int, int] = (64, 64),
    num_classes: int = AEROSCAPES_CLASSES,
    seed: int = 0,
) -> Path:
    """Write the Aeroscapes layout (JPEGImages/, SegmentationClass/, ImageSets/); returns root.

    Ids look like the real ones ("000001_001": sequence, frame); train and val ids are a seeded
    shuffle of one id list, so the two lists are disjoint and interleaved like the original.
    """
    _check_classes(num_classes, None)
    root = Path(root)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    total = n_train + n_val
    ids = [f"{k // 10 + 1:06d}_{k % 10 + 1:03d}" for k in range(total)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(total)
    splits = {
        "trn": sorted(ids[i] for i in order[:n_train]),
        "val": sorted(ids[i] for i in order[n_train:]),
    }
    for sample_id in ids:
        image, mask = render_sample(rng, size, num_classes)
        _write_image(root / "JPEGImages" / f"{sample_id}.jpg", image)
        _write_image(root / "SegmentationClass" / f"{sample_id}.png", mask)
    for name, members in splits.items():
        (root / "ImageSets" / f"{name}.txt").write_text("".join(f"{m}\n" for m in members))
    return root
