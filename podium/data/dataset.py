"""The Dataset: uint8 image and target tensors in a dict keyed by target name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from podium.data.formats import Sample
from podium.data.images import check_mask_size, read_image
from podium.data.sample_keys import SampleKey, seed_transform

if TYPE_CHECKING:
    from podium.data.cache import DecodedCache

__all__ = ["SegmentationDataset", "compact_mask"]

MaskReader = Callable[[Path], np.ndarray]


def compact_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 when every value fits, else int16: the smallest type a worker can ship."""
    if mask.dtype == np.uint8:
        return np.ascontiguousarray(mask)
    dtype = np.uint8 if mask.size == 0 or (mask.min() >= 0 and mask.max() < 256) else np.int16
    return np.ascontiguousarray(mask.astype(dtype))


class SegmentationDataset(Dataset):
    """Yields {"image": C×H×W uint8, target_key: H×W uint8 (int16 past 255), "name": str}.

    Images and masks stay small integers so workers ship 4-8× fewer bytes than float32/int64;
    normalization and the cast to int64 happen on the device (PodiumModule).

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
    ) -> None:
        self.samples = samples
        self.read_mask = read_mask
        self.transform = transform
        self.channels = channels
        self.target_key = target_key
        self.cache: DecodedCache | None = None  # data.cache: ram (podium.data.cache)

    def __len__(self) -> int:
        return len(self.samples)

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

    def __getitem__(self, key: SampleKey) -> dict:
        index = seed_transform(self.transform, key)
        sample = self.samples[index]
        image, mask = self._decoded(index)
        if self.transform is not None:
            out = (
                self.transform(image=image, mask=mask)
                if mask is not None
                else self.transform(image=image)
            )
            image, mask = out["image"], out.get("mask")
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "name": sample.name,
        }
        if mask is not None:
            item[self.target_key] = torch.from_numpy(compact_mask(mask))
        return item
