"""The `data` section of the experiment YAML: one model per dataset layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from podium.strict import IMAGENET_MEAN, IMAGENET_STD, Strict

__all__ = [
    "AeroscapesData",
    "DataBase",
    "DataConfig",
    "FolderData",
    "FoldsConfig",
    "PseudoLabels",
    "RleCsvData",
    "SplitDirs",
    "TrainTilesConfig",
]


class SplitDirs(Strict):
    images: Path = Field(description="Folder of images (jpg, png, tif, ...).")
    masks: Path | None = Field(None, description="Folder of masks paired with images by stem.")


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
        description="Decode-check every image/mask before training (cached by size+mtime): "
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
        "it in memory, shared by the workers (Linux fork); for data that fits in RAM.",
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
            import json

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


class FolderData(DataBase):
    format: Literal["folder"] = Field("folder", description="images/ + masks/ per split.")
    train: SplitDirs
    val: SplitDirs


class AeroscapesData(DataBase):
    format: Literal["aeroscapes"] = Field(description="The Aeroscapes layout.")
    root: Path = Field(description="Holds JPEGImages/, SegmentationClass/, ImageSets/.")
    train_list: str = Field("trn.txt", description="File in ImageSets/ listing train ids.")
    val_list: str = Field("val.txt", description="File in ImageSets/ listing val ids.")


class PseudoLabels(Strict):
    """Seed 001: mix pseudo-labelled images into every batch at a fixed share."""

    images: Path = Field(description="Folder of the pseudo-labelled images.")
    csv: Path = Field(description="Their masks as a Kaggle RLE CSV (`podium pseudo-label`).")
    fraction: float = Field(0.12, ge=0, lt=1, description="Share of every batch (seed: 12 %).")
    sample_rate: float = Field(
        0.6, gt=0, le=1, description="Share of the pseudo pool used per epoch (seed: ~60 %)."
    )


class RleCsvData(DataBase):
    format: Literal["rle_csv"] = Field(description="Kaggle RLE CSV (Severstal) + image folder.")
    images: Path = Field(description="Folder of the labelled images (e.g. train_images/).")
    csv: Path = Field(description="ImageId,ClassId,EncodedPixels (or ImageId_ClassId layout).")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Seeded random validation share (seed 001: 20 %)."
    )
    pseudo: PseudoLabels | None = Field(None, description="Pseudo-labelled images to mix in.")


DataConfig = Annotated[FolderData | AeroscapesData | RleCsvData, Field(discriminator="format")]
