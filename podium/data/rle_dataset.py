"""A dataset over a folder of images labelled by a Kaggle RLE CSV (Severstal layout).

Every image file in the folder is a sample; its masks come from the CSV rows with the same
ImageId (the file name, extension included, e.g. "0002cc93b.jpg"), and an image without rows is
clean (all-empty masks). The target is a C×H×W uint8 multi-label mask, channel c = class c + 1,
for a sigmoid mask head. The CSV is parsed once; masks are decoded per item in the worker, so a
DataLoader ships only the small strings to each worker.

Also here: `severstal_crop_transform`, the Severstal seed's augmentation (crop preferring
defects, one of CLAHE / blur / sharpen, flip) without Normalize / ToTensor, which podium does on
the device.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from podium.data.errors import DataError
from podium.data.images import IMAGE_EXTENSIONS, read_image
from podium.data.rle import RLEError
from podium.data.rle_csv import RLECSVError, decode_image_masks, read_rle_csv
from podium.data.sample import Sample
from podium.data.sample_keys import SampleKey, seed_transform

if TYPE_CHECKING:
    from podium.data.cache import DecodedCache

__all__ = ["RleCsvDataset", "severstal_crop_transform", "severstal_crop_transform_dict"]

Labels = dict[str, dict[int, str]]


def _list_images(folder: Path) -> dict[str, Path]:
    """{file name: path} of the image files directly in folder, sorted; raises if none."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a folder")
    found = {
        p.name: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    }
    if not found:
        raise DataError(f"image folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return found


def _check_mapping(labels: Mapping[str, Mapping[int, str]], known: set[str]) -> Labels:
    """Copy a pre-parsed {image_id: {class_id: rle}}; an id without an image file raises."""
    unknown = sorted(set(labels) - known)
    if unknown:
        raise DataError(
            f"labels name {len(unknown)} image(s) not in the image folder, e.g. {unknown[:3]}"
        )
    return {image_id: dict(entries) for image_id, entries in labels.items()}


class RleCsvDataset(Dataset):
    """Yields {"image": channels×H×W uint8, target_key: C×H×W uint8 {0,1}, "name": stem}.

    csv_path: a Kaggle RLE CSV (either layout), an already parsed {image_id: {class_id: rle}}, or
    None for unlabelled images (no target key in the items). Every ImageId in the labels must be
    a file in image_dir (the error names the CSV row). image_ids, when given, restricts the
    samples to those files (e.g. one fold) while the whole CSV is still checked. shape (H, W),
    when given, validates every RLE string up front instead of at first use.
    """

    def __init__(
        self,
        image_dir: str | os.PathLike[str],
        csv_path: str | os.PathLike[str] | Mapping[str, Mapping[int, str]] | None,
        num_classes: int = 4,
        channels: int = 1,
        transform: A.Compose | None = None,
        target_key: str = "mask",
        image_ids: Collection[str] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.num_classes = num_classes
        self.channels = channels
        self.transform = transform
        self.target_key = target_key
        files = _list_images(self.image_dir)
        self.source = None if isinstance(csv_path, Mapping) else csv_path
        self.labels = self._read_labels(csv_path, set(files), shape)
        self.ids = self._select(files, image_ids)
        self.paths = [files[i] for i in self.ids]
        self.cache: DecodedCache | None = None  # data.cache: ram (podium.data.cache)

    def _read_labels(self, csv_path: Any, known: set[str], shape: tuple | None) -> Labels | None:
        """Parse and check the labels against the folder's file names."""
        if csv_path is None:
            return None
        if isinstance(csv_path, Mapping):
            return _check_mapping(csv_path, known)
        # read_rle_csv raises naming the file and row for ids that have no image file.
        return read_rle_csv(csv_path, num_classes=self.num_classes, image_ids=known, shape=shape)

    def _select(self, files: dict[str, Path], image_ids: Collection[str] | None) -> list[str]:
        """The sample ids: every file, or the requested subset (each must exist)."""
        if image_ids is None:
            return list(files)
        missing = sorted(set(image_ids) - set(files))
        if missing:
            raise DataError(
                f"image_ids lists {len(missing)} file(s) not in {self.image_dir}, "
                f"e.g. {missing[:3]}"
            )
        return sorted(set(image_ids))

    def __len__(self) -> int:
        return len(self.ids)

    read_mask = None  # masks are RLE rows, decoded per item

    @property
    def samples(self) -> list[Sample]:
        """Mask-less Samples in the dataset's order (its masks are rows of the CSV)."""
        return [Sample(path.stem, path) for path in self.paths]

    def cache_files(self) -> list[tuple[Path, None]]:
        """Images only for data.cache: ram: decoding an RLE row is cheap next to a JPEG."""
        return [(path, None) for path in self.paths]

    def presence(self) -> np.ndarray:
        """N×C bool: image n holds a non-empty mask of class c + 1 (for samplers, folds)."""
        out = np.zeros((len(self.ids), self.num_classes), dtype=bool)
        for n, image_id in enumerate(self.ids):
            for class_id, rle in (self.labels or {}).get(image_id, {}).items():
                out[n, class_id - 1] = bool(rle.strip())
        return out

    def masks(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """C×H×W uint8 masks of sample `index` for an image of this (H, W)."""
        image_id = self.ids[index]
        entries = (self.labels or {}).get(image_id, {})
        try:
            return decode_image_masks(entries, shape, self.num_classes, image_id=image_id)
        except (RLEError, RLECSVError) as err:
            where = f"labels {self.source}" if self.source else "labels"
            raise DataError(f"{where}: {err} (image {self.paths[index]})") from err

    def __getitem__(self, key: SampleKey) -> dict:
        """An int or an (index, seed) key that reseeds the transform (podium.data.sample_keys)."""
        index = seed_transform(self.transform, key)
        if self.cache is not None:
            image = self.cache.image(index)  # H×W×channels
        else:
            image = read_image(self.paths[index], self.channels)
        masks = None if self.labels is None else self.masks(index, image.shape[:2])
        if self.transform is not None:
            if masks is None:
                image = self.transform(image=image)["image"]
            else:
                # albumentations wants channels last for a multi-channel mask.
                out = self.transform(image=image, mask=masks.transpose(1, 2, 0))
                image, masks = out["image"], out["mask"].transpose(2, 0, 1)
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "name": self.paths[index].stem,
        }
        if masks is not None:
            item[self.target_key] = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
        return item


def _flip(kind: Literal["horizontal", "any"]) -> A.BasicTransform:
    """The seed's Flip(p=0.5): horizontal only, or old albumentations' Flip (H, V or both)."""
    if kind == "horizontal":
        return A.HorizontalFlip(p=0.5)
    if kind == "any":
        # Old A.Flip picked one of horizontal, vertical, both with equal chance.
        both = A.Sequential([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=1.0)
        return A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0), both], p=0.5)
    raise ValueError(f"flip must be 'horizontal' or 'any', got {kind!r}")


def severstal_crop_transform(
    height: int, width: int, flip: Literal["horizontal", "any"] = "horizontal"
) -> A.Compose:
    """The Severstal seed's train augmentation for H×W×1 uint8 images and H×W×C masks."""
    return A.Compose(
        [
            # Half the crops are forced onto a defect (any mask channel non-zero) when there is
            # one; the other half are plain random crops, so clean context is seen too.
            A.OneOf(
                [A.CropNonEmptyMaskIfExists(height, width), A.RandomCrop(height, width)], p=1.0
            ),
            A.OneOf(
                [
                    A.CLAHE(p=0.5),  # clip_limit (1, 4): the old default; works on 1 channel
                    # Old GaussianBlur(3) was a fixed 3×3 kernel with OpenCV's sigma for it
                    # (0.8); albumentations 2 reads a bare 3 as blur_limit (0, 3).
                    A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.8, 0.8), p=0.3),
                    A.Sharpen(alpha=(0.2, 0.3), p=0.3),  # IAASharpen's replacement
                ],
                p=1.0,
            ),
            _flip(flip),
        ]
    )


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively, so yaml.safe_dump can write the dict."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def severstal_crop_transform_dict(
    height: int, width: int, flip: Literal["horizontal", "any"] = "horizontal"
) -> dict[str, Any]:
    """`severstal_crop_transform` as A.to_dict output with plain lists (YAML-safe)."""
    return _plain(A.to_dict(severstal_crop_transform(height, width, flip)))
