"""`format: rle_csv`: a folder of images labelled by a Kaggle RLE CSV (Severstal), a seeded
train/val split of it, and optional pseudo-labelled images (their own folder and CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from podium.data.errors import DataError
from podium.data.formats.base import DataBase, DataSpec, list_images
from podium.data.formats.registry import FORMATS
from podium.data.label_checks import add_rle_label_problems
from podium.data.pseudo_sampler import PseudoMix
from podium.data.rle_csv import read_rle_csv
from podium.data.rle_dataset import RleCsvDataset
from podium.data.sample import Sample
from podium.data.stats import rle_image_masks, stats_from_pairs
from podium.data.validation import ValidationReport, validate_samples
from podium.strict import Strict

if TYPE_CHECKING:
    import albumentations as A
    from torch.utils.data import Dataset

__all__ = ["PseudoLabels", "RleCsvData"]


class PseudoLabels(Strict):
    """Seed 001: mix pseudo-labelled images into every batch at a fixed share."""

    images: Path = Field(description="Folder of the pseudo-labelled images.")
    csv: Path = Field(description="Their masks as a Kaggle RLE CSV (`podium pseudo-label`).")
    fraction: float = Field(0.12, ge=0, lt=1, description="Share of every batch (seed: 12 %).")
    sample_rate: float = Field(
        0.6, gt=0, le=1, description="Share of the pseudo pool used per epoch (seed: ~60 %)."
    )


@FORMATS.register("rle_csv")
class RleCsvData(DataBase):
    format: Literal["rle_csv"] = Field(description="Kaggle RLE CSV (Severstal) + image folder.")
    images: Path = Field(description="Folder of the labelled images (e.g. train_images/).")
    csv: Path = Field(description="ImageId,ClassId,EncodedPixels (or ImageId_ClassId layout).")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Seeded random validation share (seed 001: 20 %)."
    )
    pseudo: PseudoLabels | None = Field(None, description="Pseudo-labelled images to mix in.")

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "pseudo") if self.pseudo is not None else ("train", "val")

    def split_ids(self, seed: int) -> tuple[list[str], list[str]]:
        """(train, val) image file names: a seeded random split (seed 001: 20 % validation)."""
        names = sorted(path.name for path in list_images(self.images).values())
        order = np.random.default_rng(seed).permutation(len(names))
        n_val = max(1, int(round(len(names) * self.val_fraction)))
        val = sorted(names[i] for i in order[:n_val])
        return sorted(set(names) - set(val)), val

    def samples(self, split: str, spec: DataSpec) -> list[Sample]:
        """Mask-less Samples (the masks are CSV rows); 'pseudo': the images its CSV names.

        'pseudo' gives [] when that CSV cannot be parsed; `check` then reports why.
        """
        self._check_split(split)
        if split == "pseudo":
            try:
                labels = read_rle_csv(self.pseudo.csv, num_classes=self.num_classes(spec))
            except (DataError, OSError, UnicodeDecodeError):
                return []
            return [Sample(Path(i).stem, self.pseudo.images / i) for i in sorted(labels)]
        ids = self.split_ids(spec.seed)[0 if split == "train" else 1]
        return [Sample(Path(image_id).stem, self.images / image_id) for image_id in ids]

    def dataset(
        self,
        samples: list[Sample],
        spec: DataSpec,
        transform: A.Compose | None = None,
        train: bool = False,
        pseudo: list[Sample] | None = None,
    ) -> Dataset:
        """RleCsvDataset (C×H×W multi-label masks); training mixes in data.pseudo when set.

        pseudo: the pseudo-labelled images to use (e.g. those that passed validation); None:
        every image data.pseudo.csv names.
        """
        classes, key = self.num_classes(spec), spec.mask_key or "mask"
        # The CSV keys images by file name; a Sample's name is only the stem.
        labelled = RleCsvDataset(
            self.images, self.csv, classes, spec.channels, transform, key,
            image_ids=[s.image.name for s in samples],
        )  # fmt: skip
        if not train or self.pseudo is None:
            return labelled
        # Parsed once: the ids choose the samples and the same labels feed the dataset.
        labels = read_rle_csv(self.pseudo.csv, num_classes=classes)
        ids = sorted(labels) if pseudo is None else [s.image.name for s in pseudo]
        pseudo_set = RleCsvDataset(
            self.pseudo.images, labels, classes, spec.channels, transform, key, image_ids=ids
        )
        return PseudoMix(labelled, pseudo_set)

    def check(
        self, split: str, samples: list[Sample], spec: DataSpec, cache_path: Path | None
    ) -> ValidationReport:
        """Every image decoded once, every CSV row of theirs checked against the image's size.

        split 'pseudo': the samples are data.pseudo's images, checked against data.pseudo.csv.
        """
        report = validate_samples(samples, spec.channels, None, cache_path)
        source = self.pseudo if split == "pseudo" else self
        known = {path.name for path in list_images(source.images).values()}
        add_rle_label_problems(report, samples, source.csv, self.num_classes(spec), known)
        return report

    def presence(self, samples: list[Sample], spec: DataSpec) -> np.ndarray:
        """N×C bool read off the CSV rows (nothing decoded), in the samples' order."""
        classes = self.num_classes(spec)
        known = {path.name for path in list_images(self.images).values()}
        labels = read_rle_csv(self.csv, num_classes=classes, image_ids=known)
        out = np.zeros((len(samples), classes), dtype=bool)
        for n, sample in enumerate(samples):
            for class_id, rle in labels.get(sample.image.name, {}).items():
                out[n, class_id - 1] = bool(rle.strip())
        return out

    def stats(self, samples: list[Sample], spec: DataSpec, progress: bool = True) -> dict[str, Any]:
        """The RLE rows decoded per image (multi-label: no background class)."""
        dataset = self.dataset(samples, spec)
        pairs = rle_image_masks(dataset)
        classes = self.num_classes(spec)
        return stats_from_pairs(pairs, classes, self.classes, None, len(dataset), progress)
