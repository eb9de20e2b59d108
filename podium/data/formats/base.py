"""What every data format shares: the Sample (podium.data.sample), image listing, the typed
values a format receives from outside its YAML section, and `DataBase` (the common `data` keys
plus the methods every format implements)."""

from __future__ import annotations

import functools
import json
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from podium.data.errors import DataError
from podium.data.images import IMAGE_EXTENSIONS, read_mask
from podium.data.sample import Sample
from podium.strict import IMAGENET_MEAN, IMAGENET_STD, Strict

if TYPE_CHECKING:
    import albumentations as A
    from torch.utils.data import Dataset

    from podium.data.validation import ValidationReport

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataBase",
    "DataSpec",
    "FoldsConfig",
    "Sample",
    "TrainTilesConfig",
    "list_images",
]

MaskReader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class DataSpec:
    """What a format needs from outside its own YAML section (model and heads), as plain values.

    mask_key: batch key of the mask head's target (None: no mask head); mask_classes: that
    head's output channels (None: len(data.classes)); inputs: model.inputs, name → values.
    """

    channels: int = 3
    mask_key: str | None = "mask"
    mask_classes: int | None = None
    inputs: Mapping[str, int] = field(default_factory=dict, hash=False)
    seed: int = 0


def list_images(folder: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> dict[str, Path]:
    """Stem → file path of the files with these extensions; two files with one stem raise."""
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in extensions or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"two files share the stem {path.stem!r}: {found[path.stem]} and {path}"
            )
        found[path.stem] = path
    return found


class FoldsConfig(Strict):
    """k-fold cross-validation over the train split (`podium split`, `train --fold`)."""

    csv: Path = Field(Path("folds.csv"), description="Folds CSV (name,fold[,group]).")
    n_splits: int = Field(5, ge=2)
    method: Literal["random", "stratified", "group", "stratified_group"] = Field(
        "stratified", description="stratified uses per-image class presence (multi-label aware)."
    )
    group_regex: str | None = Field(
        None, description="Regex on the image name; its first group is the group (e.g. city)."
    )
    duplicate_distance: int = Field(
        4, ge=0, description="dHash bits: closer images in different folds are reported."
    )


class TrainTilesConfig(Strict):
    """Seed 000: train on overlapping tiles of rescaled images (indexed lazily, no copies)."""

    scales: list[float] = Field([1.0, 0.5], description="Rescale factors of each image.")
    tile: int = Field(512, ge=32, description="Tile side in pixels.")
    overlap: float = Field(0.25, ge=0, lt=1, description="Overlap fraction between tiles.")


class DataBase(Strict):
    """The keys every format has; a format subclass adds its own and implements the methods."""

    classes: list[str] = Field(description="Class names; the mask value i is classes[i].")
    mask_encoding: Literal["index", "palette"] = Field(
        "index",
        description="index: masks hold class ids (grey or PIL 'P' PNG); palette: RGB masks "
        "whose colours are listed in `palette`.",
    )
    palette: list[tuple[int, int, int]] | None = Field(
        None, description="RGB colour per class: decodes palette masks and colours outputs."
    )
    ignore_index: int | None = Field(
        255, description="Mask value excluded from loss and metrics (null: none)."
    )
    ignore_color: tuple[int, int, int] | None = Field(
        None, description="Palette masks only: the colour that means ignore_index."
    )
    mean: tuple[float, ...] = Field(IMAGENET_MEAN, description="Per-channel mean, 0..1 scale.")
    std: tuple[float, ...] = Field(IMAGENET_STD, description="Per-channel std, 0..1 scale.")
    batch_size: int = Field(8, ge=1, description="Training batch size.")
    val_batch_size: int | None = Field(None, ge=1, description="Defaults to batch_size.")
    validation: Literal["error", "skip", "off"] = Field(
        "error",
        description="Decode-check every image/label before training (cached by size+mtime): "
        "error stops with the list, skip drops and counts bad samples.",
    )
    folds: FoldsConfig | None = Field(None, description="k-fold setup; null: fixed train/val.")
    train_tiles: TrainTilesConfig | None = Field(
        None, description="Multi-scale overlapping training tiles; null: whole images."
    )
    sampler: Literal["random", "class_balanced"] = Field(
        "random", description="class_balanced draws images by the rarity of their classes."
    )
    sampler_power: float = Field(1.0, ge=0, description="class_balanced: weight = (1/freq)^power.")
    stats_file: Path | None = Field(
        None, description="JSON from `podium stats`: its mean/std replace data.mean/std."
    )
    num_workers: int | Literal["auto"] = Field(
        "auto", description="DataLoader workers; auto = cores - 1, at most 16."
    )
    cache: Literal["none", "ram"] = Field(
        "none",
        description="ram: decode every train/val image (and mask) once before training and keep "
        "it in memory, shared by the workers (Linux fork); for data that fits in RAM. Dense "
        "targets are still read per item.",
    )
    cache_max_gb: float = Field(
        16.0,
        gt=0,
        description="cache: ram refuses to start when the decoded images and masks need more "
        "(GB, from the image headers).",
    )

    @model_validator(mode="after")
    def _stats_normalization(self):
        if self.stats_file is not None:
            try:
                stats = json.loads(Path(self.stats_file).read_text())
                mean, std = tuple(stats["mean"]), tuple(stats["std"])
            except (OSError, ValueError, KeyError) as error:
                raise ValueError(f"stats_file {self.stats_file}: {error}") from None
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)
        return self

    @field_validator("palette")
    @classmethod
    def _palette_colours(cls, value):
        if value is not None:
            for colour in value:
                if not all(0 <= c <= 255 for c in colour):
                    raise ValueError(f"palette colour {colour} is outside 0..255")
        return value

    def mask_reader(self, spec: DataSpec) -> MaskReader:
        """The strict reader of this data's mask files: path → H×W class ids."""
        palette = self.palette if self.mask_encoding == "palette" else None
        if self.mask_encoding == "palette" and palette is None:
            raise ValueError("data.mask_encoding is 'palette' but data.palette is not set")
        classes = spec.mask_classes if spec.mask_classes is not None else len(self.classes)
        return functools.partial(
            read_mask,
            num_classes=classes,
            ignore_index=self.ignore_index,
            palette=palette,
            ignore_color=self.ignore_color,
        )

    def num_classes(self, spec: DataSpec) -> int:
        """Channels of the mask head (C of the presence matrix), else len(data.classes)."""
        return spec.mask_classes if spec.mask_classes is not None else len(self.classes)

    def splits(self) -> tuple[str, ...]:
        """The splits `samples` lists (and `podium check` checks)."""
        return ("train", "val")

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            valid = ", ".join(map(repr, self.splits()))
            raise ValueError(f"data format {self.format!r} has no split {split!r} ({valid})")

    @abstractmethod
    def samples(self, split: str, spec: DataSpec) -> list[Sample]:
        """The split's samples, strictly paired (a missing or unpaired file raises, named)."""

    @abstractmethod
    def dataset(
        self,
        samples: list[Sample],
        spec: DataSpec,
        transform: A.Compose | None = None,
        train: bool = False,
        pseudo: list[Sample] | None = None,
    ) -> Dataset:
        """Items {"image", "name", targets...} over the samples; train: the training set.

        pseudo: formats with pseudo-labels mix these into the training set (None: all).
        """

    @abstractmethod
    def check(
        self, split: str, samples: list[Sample], spec: DataSpec, cache_path: Path | None
    ) -> ValidationReport:
        """Decode every image and label of the samples once (cached); problems by sample."""

    @abstractmethod
    def presence(self, samples: list[Sample], spec: DataSpec) -> np.ndarray:
        """N×C bool: sample n holds class c (folds, the class-balanced sampler), in order."""

    @abstractmethod
    def stats(self, samples: list[Sample], spec: DataSpec, progress: bool = True) -> dict[str, Any]:
        """Channel mean/std, sizes and class frequencies of the samples (`podium stats`)."""
