"""Synthetic datasets for tests: layout, determinism, palette and ignore masks, learnability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from podium.data.synthetic import (
    class_colors,
    make_aeroscapes_dataset,
    make_folder_dataset,
    render_sample,
)

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def test_folder_layout_shapes_and_classes(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", n=6, size=(48, 80), num_classes=4)
    images, masks = _files(root / "images"), _files(root / "masks")
    assert [p.stem for p in images] == [p.stem for p in masks]
    assert len(images) == 6 and all(p.suffix == ".png" for p in images + masks)
    seen: set[int] = set()
    for image_path, mask_path in zip(images, masks, strict=True):
        image, mask = _read(image_path), _read(mask_path)
        assert image.shape == (48, 80, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 80) and mask.dtype == np.uint8
        seen |= set(np.unique(mask).tolist())
    assert seen == {0, 1, 2, 3}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    def all_bytes(root: Path) -> list[bytes]:
        return [p.read_bytes() for p in _files(root / "masks") + _files(root / "images")]

    a = make_folder_dataset(tmp_path / "a", n=3, seed=7)
    b = make_folder_dataset(tmp_path / "b", n=3, seed=7)
    c = make_folder_dataset(tmp_path / "c", n=3, seed=8)
    assert all_bytes(a) == all_bytes(b)
    assert all_bytes(a) != all_bytes(c)


def test_ignore_band_in_id_masks(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path, n=4, num_classes=3, ignore_index=255)
    masks = [_read(p) for p in _files(root / "masks")]
    for i, mask in enumerate(masks):
        has_ignore = bool((mask == 255).any())
        assert has_ignore == (i % 2 == 0)  # every other mask carries a band
        assert set(np.unique(mask).tolist()) <= {0, 1, 2, 255}


def test_palette_masks_with_ignore_colour(tmp_path: Path) -> None:
    root = make_folder_dataset(
        tmp_path, n=4, num_classes=4, palette=PALETTE, ignore_index=255, image_ext=".jpg"
    )
    assert all(p.suffix == ".jpg" for p in _files(root / "images"))
    allowed = {*PALETTE, (255, 255, 255)}
    for i, path in enumerate(_files(root / "masks")):
        mask = _read(path)
        assert mask.shape == (64, 64, 3)
        colours = {tuple(c) for c in np.unique(mask.reshape(-1, 3), axis=0).tolist()}
        assert colours <= allowed
        assert ((255, 255, 255) in colours) == (i % 2 == 0)


def test_palette_without_ignore_uses_only_palette(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path, n=2, num_classes=3, palette=PALETTE[:3])
    for path in _files(root / "masks"):
        colours = {tuple(c) for c in np.unique(_read(path).reshape(-1, 3), axis=0).tolist()}
        assert colours <= set(PALETTE[:3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 3, "ignore_index": 2}, "ignore_index"),
        ({"num_classes": 4, "palette": PALETTE[:3]}, "palette"),
        (
            {"num_classes": 4, "palette": PALETTE, "ignore_index": 255, "ignore_color": (0, 0, 0)},
            "ignore_color",
        ),
        ({"image_ext": "png"}, "image_ext"),
        ({"size": (4, 64)}, "size"),
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_folder_dataset(tmp_path, n=1, **kwargs)


def test_colour_predicts_class() -> None:
    """Learnable: the nearest class colour already labels most pixels right."""
    rng = np.random.default_rng(0)
    colours = class_colors(5).astype(np.float32)
    correct = total = 0
    for _ in range(4):
        image, mask = render_sample(rng, (64, 64), 5)
        dist = ((image[..., None, :].astype(np.float32) - colours) ** 2).sum(-1)
        correct += int((dist.argmin(-1) == mask).sum())
        total += mask.size
    assert correct / total > 0.9


def test_aeroscapes_layout(tmp_path: Path) -> None:
    root = make_aeroscapes_dataset(tmp_path / "aero", n_train=7, n_val=3, size=(36, 64))
    train = (root / "ImageSets" / "trn.txt").read_text().split()
    val = (root / "ImageSets" / "val.txt").read_text().split()
    assert len(train) == 7 and len(val) == 3
    assert not set(train) & set(val)
    for sample_id in train + val:
        image = _read(root / "JPEGImages" / f"{sample_id}.jpg")
        mask = _read(root / "SegmentationClass" / f"{sample_id}.png")
        assert image.shape == (36, 64, 3) and mask.shape == (36, 64)
        assert mask.max() < 12
    assert len(_files(root / "JPEGImages")) == 10


def test_aeroscapes_is_deterministic(tmp_path: Path) -> None:
    a = make_aeroscapes_dataset(tmp_path / "a", 4, 2, seed=3)
    b = make_aeroscapes_dataset(tmp_path / "b", 4, 2, seed=3)
    for rel in ["ImageSets/trn.txt", "ImageSets/val.txt", "SegmentationClass/000001_001.png"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
