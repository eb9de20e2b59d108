"""What the formats whose masks are image files share (folder, aeroscapes): dataset, checks,
class presence and stats over Samples with mask files (and, for those that have them, dense
target files and extra inputs)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from podium.data.copy_paste import attach_donors
from podium.data.dataset import SegmentationDataset
from podium.data.dense import DenseTarget, dense_problems
from podium.data.errors import DataError
from podium.data.folds import presence_from_masks
from podium.data.formats.base import DataBase, DataSpec
from podium.data.sample import Sample
from podium.data.stats import dataset_stats
from podium.data.tiling import TiledDataset
from podium.data.validation import ValidationReport, validate_samples

if TYPE_CHECKING:
    import albumentations as A
    from torch.utils.data import Dataset

__all__ = ["MaskFileData"]


class MaskFileData(DataBase):
    """A DataBase whose samples carry mask files read by `mask_reader`."""

    def dense_targets(self) -> dict[str, DenseTarget]:
        """Batch key → how to read that dense target; none unless the format declares some."""
        return {}

    def dataset(
        self,
        samples: list[Sample],
        spec: DataSpec,
        transform: A.Compose | None = None,
        train: bool = False,
        pseudo: list[Sample] | None = None,
    ) -> Dataset:
        """SegmentationDataset (or, training with data.train_tiles, TiledDataset)."""
        if pseudo is not None:
            raise ValueError(f"data format {self.format!r} has no pseudo-labels to mix in")
        reader = self.mask_reader(spec) if spec.mask_key is not None else None
        key = spec.mask_key or "mask"
        if reader is not None:
            attach_donors(transform, samples, reader, spec.channels)
        dense = self.dense_targets()
        tiles = self.train_tiles
        if train and tiles is not None:
            if dense:
                raise DataError(
                    "data.train_tiles cuts images and masks only, not dense targets: "
                    "set train_tiles: null or drop data.targets"
                )
            return TiledDataset(
                samples,
                reader,
                tiles.scales,
                tiles.tile,
                tiles.overlap,
                transform,
                spec.channels,
                key,
                self.ignore_index,
                spec.inputs,
            )
        return SegmentationDataset(
            samples, reader, transform, spec.channels, key, dense, spec.inputs
        )

    def check(
        self, split: str, samples: list[Sample], spec: DataSpec, cache_path: Path | None
    ) -> ValidationReport:
        """Every image, mask and dense target file decoded once (cached by size and mtime)."""
        reader = self.mask_reader(spec) if any(s.mask is not None for s in samples) else None
        dense = self.dense_targets()
        targets = functools.partial(dense_problems, specs=dense) if dense else None
        return validate_samples(samples, spec.channels, reader, cache_path, check_targets=targets)

    def presence(self, samples: list[Sample], spec: DataSpec) -> np.ndarray:
        """N×C bool from one pass over the mask files."""
        return presence_from_masks(
            samples, self.mask_reader(spec), self.num_classes(spec), progress=True
        )

    def stats(self, samples: list[Sample], spec: DataSpec, progress: bool = True) -> dict[str, Any]:
        """One pass over the image and mask files (single-label, background class 0)."""
        return dataset_stats(
            samples,
            self.mask_reader(spec),
            self.num_classes(spec),
            self.classes,
            spec.channels,
            progress=progress,
        )
