"""`format: folder`: images/ + masks/ per split, paired by stem; dense target folders beside
them (`targets`), extra model inputs from a CSV per split (`inputs`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from podium.data.dense import DENSE_EXTENSIONS, DenseTarget
from podium.data.errors import DataError
from podium.data.formats.base import DataSpec, list_images
from podium.data.formats.mask_files import MaskFileData
from podium.data.formats.registry import FORMATS
from podium.data.images import IMAGE_EXTENSIONS
from podium.data.inputs_csv import read_inputs_csv
from podium.data.sample import Sample
from podium.strict import Strict

__all__ = ["DenseTargetConfig", "FolderData", "SplitDirs", "folder_samples"]

_SHOW = 10  # how many offending names an error lists
_RESERVED = {"image", "name", "inputs"}  # item keys a target must not take


class SplitDirs(Strict):
    images: Path = Field(description="Folder of images (jpg, png, tif, ...).")
    masks: Path | None = Field(
        None, description="Folder of masks paired with images by stem (null: no masks)."
    )
    inputs: Path | None = Field(
        None,
        description="CSV of extra model inputs: a `name` column (image stem) and one column per "
        "value of each model.inputs entry (gsd; gsd_0..gsd_{n-1} for n > 1).",
    )


class DenseTargetConfig(Strict):
    """One per-pixel float target (a height map, ...), read from files paired by stem."""

    dir: Path = Field(
        description="Folder relative to each split's root (the folder holding its images "
        "folder); 8/16-bit PNG, TIFF or .npy (H×W or H×W×k) per image stem."
    )
    scale: float = Field(1.0, description="value = raw · scale + offset (float32).")
    offset: float = Field(0.0, description="Added after scaling.")
    nodata: float | None = Field(
        None, description="Raw value of invalid pixels (NaN always is): left out of the loss."
    )
    channels: int = Field(1, ge=1, description="k: values per pixel the files hold.")

    @field_validator("dir")
    @classmethod
    def _relative(cls, value: Path) -> Path:
        if value.is_absolute():
            raise ValueError(
                f"{value} is absolute: give a folder relative to each split's root (the parent "
                "of its images folder), so train and val read their own files"
            )
        return value

    def spec(self) -> DenseTarget:
        return DenseTarget(self.scale, self.offset, self.nodata, self.channels)


@FORMATS.register("folder")
class FolderData(MaskFileData):
    format: Literal["folder"] = Field("folder", description="images/ + masks/ per split.")
    train: SplitDirs
    val: SplitDirs
    targets: dict[str, DenseTargetConfig] = Field(
        default_factory=dict,
        description="Dense float targets by batch key (e.g. height: {dir: heights, scale: "
        "0.01, nodata: 65535}); items carry <key> (k×H×W) and valid_<key>.",
    )

    @field_validator("targets")
    @classmethod
    def _target_keys(cls, value: dict[str, DenseTargetConfig]) -> dict[str, DenseTargetConfig]:
        for key in value:
            if key in _RESERVED or key.startswith("valid_"):
                raise ValueError(f"target key {key!r} is taken: avoid {sorted(_RESERVED)}, valid_*")
        return value

    def dense_targets(self) -> dict[str, DenseTarget]:
        return {key: target.spec() for key, target in self.targets.items()}

    def samples(self, split: str, spec: DataSpec) -> list[Sample]:
        """The split's images, paired with its masks, target files and inputs CSV rows."""
        self._check_split(split)
        dirs = self.train if split == "train" else self.val
        if spec.mask_key in self.targets:
            raise DataError(f"data.targets.{spec.mask_key} has the mask head's target key")
        if spec.inputs and dirs.inputs is None:
            raise DataError(
                f"model.inputs declares {', '.join(spec.inputs)} but data.{split}.inputs (the "
                "CSV of their values per image) is not set"
            )
        root = dirs.images.parent
        folders = {key: root / target.dir for key, target in self.targets.items()}
        csv = dirs.inputs if spec.inputs else None
        return folder_samples(dirs.images, dirs.masks, folders, csv, spec.inputs)


def folder_samples(
    images: Path,
    masks: Path | None = None,
    targets: Mapping[str, Path] | None = None,
    inputs_csv: Path | None = None,
    inputs: Mapping[str, int] | None = None,
) -> list[Sample]:
    """images/ paired by stem with masks/ and each target folder; unpaired files are an error.

    inputs_csv: the values of the declared `inputs` (name → count), one row per image stem.
    """
    image_paths = list_images(images)
    if not image_paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
    mask_paths = _paired(image_paths, images, masks, "mask", IMAGE_EXTENSIONS) if masks else {}
    target_paths = {
        key: _paired(image_paths, images, folder, f"{key!r} target", DENSE_EXTENSIONS)
        for key, folder in (targets or {}).items()
    }
    values = read_inputs_csv(inputs_csv, inputs or {}, list(image_paths)) if inputs_csv else {}
    return [
        Sample(
            stem,
            path,
            mask_paths.get(stem),
            {key: paths[stem] for key, paths in target_paths.items()},
            values.get(stem, {}),
        )
        for stem, path in image_paths.items()
    ]


def _paired(
    image_paths: dict[str, Path], images: Path, folder: Path, what: str, extensions: tuple
) -> dict[str, Path]:
    """Stem → file of `folder`, every image having one and every file an image."""
    if not folder.is_dir():
        raise DataError(f"{what} folder {folder} (for the images in {images}) does not exist")
    found = list_images(folder, extensions)
    no_file = sorted(set(image_paths) - set(found))
    no_image = sorted(set(found) - set(image_paths))
    problems = []
    if no_file:
        problems.append(
            f"{len(no_file)} image(s) in {images} have no {what} in {folder}: "
            f"{', '.join(no_file[:_SHOW])}"
        )
    if no_image:
        problems.append(
            f"{len(no_image)} {what}(s) in {folder} have no image in {images}: "
            f"{', '.join(no_image[:_SHOW])}"
        )
    if problems:
        raise DataError("unpaired files: " + "; ".join(problems))
    return found
