"""A synthetic Severstal Steel Defect Detection dataset: Kaggle's layout, learnable, offline.

`make_severstal_dataset(root)` writes, deterministically for a seed:

    root/train_images/<id>.jpg   grayscale steel strips saved as 3-channel JPEGs (as on Kaggle)
    root/train.csv               ImageId,ClassId,EncodedPixels; one row per (image, defect class)
                                 present, clean images have no row (Kaggle's current layout)
    root/test_images/<id>.jpg    unlabeled strips, for inference and pseudo-labelling
    root/sample_submission.csv   every (test image, class) pair with an empty EncodedPixels
    root/test_truth.csv          the test masks (demo only: Kaggle keeps these hidden), so
                                 pseudo-label and tuning demos can be scored

Ids look like Kaggle's ("0002cc93b.jpg"). The texture is a dark grey strip with horizontal
streaks, slow brightness drift and pixel noise. Each defect class has its own signature, so a
small model separates them from shape and contrast rather than from one pixel value:

    class 1  clusters of small dark pits (discs a few pixels across)
    class 2  thin bright near-vertical scratches
    class 3  large bright irregular patches (unions of ellipses)
    class 4  dark elongated horizontal blobs

A defective image holds one class or, sometimes, two; each class gets its own horizontal slice of
the strip so masks never overlap (multi-label targets stay unambiguous). Sizes scale with the
image height, so a 64 x 400 strip is a quarter-scale 256 x 1600 one, except that pits and
scratches keep a 2-pixel floor (radius, thickness) so they stay visible on small test strips.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from podium.data.rle import rle_encode
from podium.data.rle_csv import write_rle_csv

__all__ = ["NUM_CLASSES", "make_severstal_dataset", "render_strip"]

NUM_CLASSES = 4
_BASE_GREY = 88.0  # ~ Severstal's mean 0.3439 * 255
_TWO_CLASS_SHARE = 0.25  # share of defective images that carry a second class
_JPEG_QUALITY = 95


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """H×W float32 steel texture: row bands, streaks smeared along x, drift and noise."""
    rows = cv2.GaussianBlur(rng.normal(size=(height, 1)).astype(np.float32), (1, 0), 2.0)
    streaks = rng.normal(size=(height, width)).astype(np.float32)
    # A long kernel along x and a short one along y turns white noise into horizontal streaks.
    streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=max(width / 60, 2.0), sigmaY=0.8)
    streaks /= streaks.std() + 1e-6
    drift = np.sin(np.linspace(0, rng.uniform(1, 3) * np.pi, width, dtype=np.float32))
    noise = rng.normal(0.0, 4.0, size=(height, width)).astype(np.float32)
    return _BASE_GREY + 6 * rows + 5 * streaks + 4 * drift[None, :] + noise


def _pits(rng: np.random.Generator, canvas: np.ndarray, x0: int, x1: int, s: float) -> float:
    """Class 1: a cluster of small discs inside columns [x0, x1); returns the contrast."""
    height = canvas.shape[0]
    cx, cy = rng.integers(x0, x1), rng.integers(0, height)
    spread = max(int(30 * s), 3)
    for _ in range(int(rng.integers(4, 11))):
        x = int(np.clip(cx + rng.integers(-spread, spread + 1), x0, x1 - 1))
        y = int(np.clip(cy + rng.integers(-spread, spread + 1), 0, height - 1))
        cv2.circle(canvas, (x, y), max(int(rng.integers(2, 6) * s), 2), 1, -1)
    return -45.0


def _scratches(rng: np.random.Generator, canvas: np.ndarray, x0: int, x1: int, s: float) -> float:
    """Class 2: 1-3 thin near-vertical lines inside columns [x0, x1); returns the contrast."""
    height = canvas.shape[0]
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.uniform(0.4, 0.9) * height)
        y0 = int(rng.integers(0, height - length + 1))
        x = int(rng.integers(x0, x1))
        x_end = int(np.clip(x + rng.integers(-int(6 * s) - 1, int(6 * s) + 2), x0, x1 - 1))
        thickness = max(int(round(2 * s)), 2)
        cv2.line(canvas, (x, y0), (x_end, y0 + length - 1), 1, thickness)
    return 55.0


def _patch(rng: np.random.Generator, canvas: np.ndarray, x0: int, x1: int, s: float) -> float:
    """Class 3: a union of 4-8 ellipses around one centre in [x0, x1); returns the contrast."""
    height = canvas.shape[0]
    cx, cy = int(rng.integers(x0, x1)), int(rng.integers(height // 4, 3 * height // 4 + 1))
    for _ in range(int(rng.integers(4, 9))):
        centre = (cx + int(rng.integers(-40, 41) * s), cy + int(rng.integers(-25, 26) * s))
        axes = (max(int(rng.integers(25, 91) * s), 2), max(int(rng.integers(15, 56) * s), 2))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return 35.0


def _blob(rng: np.random.Generator, canvas: np.ndarray, x0: int, x1: int, s: float) -> float:
    """Class 4: 1-2 dark elongated near-horizontal ellipses in [x0, x1); returns the contrast."""
    height = canvas.shape[0]
    for _ in range(int(rng.integers(1, 3))):
        centre = (int(rng.integers(x0, x1)), int(rng.integers(0, height)))
        axes = (max(int(rng.integers(40, 121) * s), 4), max(int(rng.integers(6, 16) * s), 2))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(-15, 15)), 0, 360, 1, -1)
    return -55.0


_DRAW = {1: _pits, 2: _scratches, 3: _patch, 4: _blob}


def render_strip(
    rng: np.random.Generator, height: int, width: int, classes: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """One strip: (H, W) uint8 grey image and (4, H, W) uint8 masks holding `classes` (1-based)."""
    image = _texture(rng, height, width)
    masks = np.zeros((NUM_CLASSES, height, width), dtype=np.uint8)
    scale = height / 256
    bounds = np.linspace(0, width, len(classes) + 1).astype(int)
    for (x0, x1), class_id in zip(zip(bounds[:-1], bounds[1:]), classes):
        canvas = np.zeros((height, width), dtype=np.uint8)
        contrast = _DRAW[class_id](rng, canvas, int(x0), int(x1), scale)
        # Shapes may spill past their slice; cut them so classes never overlap.
        canvas[:, :x0] = 0
        canvas[:, x1:] = 0
        # Soft edges look like real defects; the label stays the hard shape.
        layer = cv2.GaussianBlur(canvas.astype(np.float32), (0, 0), 1.0)
        image += contrast * layer * rng.uniform(0.8, 1.2)
        masks[class_id - 1] = canvas
    return np.clip(image, 0, 255).astype(np.uint8), masks


def _image_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """n unique Kaggle-style ids ("0002cc93b.jpg"), none of them in `taken` (which grows)."""
    ids: list[str] = []
    while len(ids) < n:
        image_id = f"{int(rng.integers(16**9)):09x}.jpg"
        if image_id not in taken:
            taken.add(image_id)
            ids.append(image_id)
    return ids


def _class_plan(rng: np.random.Generator, n: int, clean_share: float) -> list[list[int]]:
    """Defect classes per image: round(clean_share * n) clean, the rest cycle classes 1..4."""
    n_clean = int(round(clean_share * n))
    clean = set(rng.permutation(n)[:n_clean].tolist())
    plan: list[list[int]] = []
    cycle = 0
    for i in range(n):
        if i in clean:
            plan.append([])
            continue
        # Cycling the first class guarantees every class appears once four images are defective.
        first = cycle % NUM_CLASSES + 1
        cycle += 1
        classes = [first]
        if rng.random() < _TWO_CLASS_SHARE:
            classes.append(int(rng.choice([c for c in range(1, NUM_CLASSES + 1) if c != first])))
        plan.append(classes)
    return plan


def _write_split(
    rng: np.random.Generator, folder: Path, ids: list[str], plan: list[list[int]], size: tuple
) -> list[tuple[str, int, str]]:
    """Render and write one split's JPEGs; returns its (ImageId, ClassId, rle) defect rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, str]] = []
    for image_id, classes in zip(ids, plan):
        grey, masks = render_strip(rng, size[0], size[1], classes)
        # Kaggle ships the grey strips as 3-channel JPEGs; readers must cope with that.
        bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        if not cv2.imwrite(str(folder / image_id), bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"cannot write {folder / image_id}")
        # Kaggle lists only defects that are there; a shape cut away entirely gets no row.
        rows.extend(
            (image_id, c, rle_encode(masks[c - 1])) for c in sorted(classes) if masks[c - 1].any()
        )
    return rows


def _check_no_strays(folder: Path, ids: list[str]) -> None:
    """Raise if folder holds files this build would not write (they would pass as clean)."""
    if not folder.is_dir():
        return
    expected = set(ids)
    strays = sorted(p.name for p in folder.iterdir() if p.name not in expected)
    if strays:
        raise FileExistsError(
            f"{folder} already holds {len(strays)} other file(s), e.g. {strays[:3]}: an image "
            "without CSV rows reads as clean, so use an empty root"
        )


def make_severstal_dataset(
    root: str | Path,
    n_train: int = 40,
    n_test: int = 10,
    height: int = 256,
    width: int = 1600,
    clean_share: float = 0.3,
    seed: int = 0,
) -> Path:
    """Write the synthetic Severstal layout under root (see module doc); returns root.

    Rebuilding into the same root with the same arguments rewrites the same files; a root
    holding other images raises FileExistsError rather than mixing two datasets.
    """
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be at least 16, got {height}x{width}")
    if not 0.0 <= clean_share <= 1.0:
        raise ValueError(f"clean_share must be in [0, 1], got {clean_share}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    train_ids, test_ids = _image_ids(rng, n_train, taken), _image_ids(rng, n_test, taken)
    train_plan = _class_plan(rng, n_train, clean_share)
    test_plan = _class_plan(rng, n_test, clean_share)
    _check_no_strays(root / "train_images", train_ids)
    _check_no_strays(root / "test_images", test_ids)
    size = (height, width)
    train_rows = _write_split(rng, root / "train_images", train_ids, train_plan, size)
    test_rows = _write_split(rng, root / "test_images", test_ids, test_plan, size)
    write_rle_csv(root / "train.csv", sorted(train_rows))
    write_rle_csv(root / "test_truth.csv", sorted(test_rows))
    blank = [(i, c, "") for i in sorted(test_ids) for c in range(1, NUM_CLASSES + 1)]
    write_rle_csv(root / "sample_submission.csv", blank)
    return root
