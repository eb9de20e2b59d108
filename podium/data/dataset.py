"""The Dataset: uint8 image and target tensors in a dict keyed by target name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from podium.data.dense import DenseTarget, read_dense
from podium.data.dense_augment import augment_dense, linear_twin
from podium.data.errors import DataError
from podium.data.images import check_mask_size, read_image
from podium.data.sample import Sample
from podium.data.sample_keys import SampleKey, seed_transform

if TYPE_CHECKING:
    from podium.data.cache import DecodedCache

__all__ = ["SegmentationDataset", "compact_mask", "input_tensors"]

MaskReader = Callable[[Path], np.ndarray]


def compact_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 when every value fits, else int16: the smallest type a worker can ship."""
    if mask.dtype == np.uint8:
        return np.ascontiguousarray(mask)
    dtype = np.uint8 if mask.size == 0 or (mask.min() >= 0 and mask.max() < 256) else np.int16
    return np.ascontiguousarray(mask.astype(dtype))


def input_tensors(sample: Sample, inputs: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """{input name: float32 (n,)} of the sample's extra inputs, n as declared."""
    out = {}
    for name, count in inputs.items():
        values = sample.inputs.get(name)
        if values is None or len(values) != count:
            found = "none" if values is None else f"{len(values)} value(s)"
            raise DataError(f"{sample.image}: input {name!r} needs {count} value(s), has {found}")
        out[name] = torch.tensor(values, dtype=torch.float32)
    return out


class SegmentationDataset(Dataset):
    """Yields {"image": C×H×W uint8, "name": str, target_key: H×W uint8 (int16 past 255),
    <dense key>: k×H×W float32, "valid_<dense key>": H×W bool, "inputs": {name: (n,) float32}}.

    Images and masks stay small integers so workers ship 4-8× fewer bytes than float32/int64;
    normalization and the cast to int64 happen on the device (PodiumModule). Dense targets
    (`dense`: batch key → how to read it) come with a valid map when they have a nodata value
    or a transform may pad or move pixels out of frame; `inputs` (name → count) adds "inputs".

    Items are indexed by an int or, from the training samplers, an (index, seed) key that
    reseeds the transform first (podium.data.sample_keys).
    """

    def __init__(
        self,
        samples: list[Sample],
        read_mask: MaskReader | None,
        transform: A.Compose | None = None,
        channels: int = 3,
        target_key: str = "mask",
        dense: Mapping[str, DenseTarget] | None = None,
        inputs: Mapping[str, int] | None = None,
    ) -> None:
        self.samples = samples
        self.read_mask = read_mask
        self.transform = transform
        self.channels = channels
        self.target_key = target_key
        self.dense = dict(dense or {})
        self.inputs = dict(inputs or {})
        # Built once: the twin pipeline that moves dense maps with linear interpolation.
        self.twin = linear_twin(transform) if self.dense and transform is not None else None
        self.valid_keys = {
            key
            for key, spec in self.dense.items()
            if spec.nodata is not None or transform is not None
        }
        self.cache: DecodedCache | None = None  # data.cache: ram (podium.data.cache)

    def __len__(self) -> int:
        return len(self.samples)

    def cache_files(self) -> list[tuple[Path, Path | None]]:
        """(image, mask or None) per sample: what data.cache: ram decodes."""
        with_masks = self.read_mask is not None
        return [(s.image, s.mask if with_masks else None) for s in self.samples]

    def _decoded(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """H×W×C image and H×W mask (None without one): from the RAM cache when attached."""
        if self.cache is not None:
            return self.cache.image(index), self.cache.mask(index)
        sample = self.samples[index]
        image = read_image(sample.image, self.channels)
        if sample.mask is None or self.read_mask is None:
            return image, None
        mask = check_mask_size(self.read_mask(sample.mask), image, sample.mask, sample.image)
        return image, mask

    def _dense(self, sample: Sample, shape: tuple[int, int]) -> tuple[dict, dict]:
        """{key: H×W×k float32} values (no-data filled) and {key: H×W bool} valid maps."""
        values, valid = {}, {}
        for key, spec in self.dense.items():
            if key not in sample.targets:
                raise DataError(f"{sample.image} has no {key!r} target file")
            values[key], valid[key] = read_dense(sample.targets[key], spec, shape)
        return values, valid

    def __getitem__(self, key: SampleKey) -> dict:
        index = seed_transform(self.transform, key)
        sample = self.samples[index]
        image, mask = self._decoded(index)
        values: dict[str, np.ndarray] = {}
        valid: dict[str, np.ndarray] = {}
        if self.dense:
            values, valid = self._dense(sample, image.shape[:2])
            image, mask, values, valid = augment_dense(
                self.transform, self.twin, image, mask, values, valid
            )
        elif self.transform is not None:
            data = {"image": image} if mask is None else {"image": image, "mask": mask}
            out = self.transform(**data)
            image, mask = out["image"], out.get("mask")
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "name": sample.name,
        }
        if mask is not None:
            item[self.target_key] = torch.from_numpy(compact_mask(mask))
        for name, array in values.items():
            item[name] = torch.from_numpy(array)
            if name in self.valid_keys:
                item[f"valid_{name}"] = torch.from_numpy(np.ascontiguousarray(valid[name]))
        if self.inputs:
            item["inputs"] = input_tensors(sample, self.inputs)
        return item
