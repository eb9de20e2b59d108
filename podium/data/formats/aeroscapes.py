"""`format: aeroscapes`: JPEGImages/<id>.jpg, SegmentationClass/<id>.png, ImageSets/<list>."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from podium.data.errors import DataError
from podium.data.formats.base import DataSpec, list_images
from podium.data.formats.mask_files import MaskFileData
from podium.data.formats.registry import FORMATS
from podium.data.sample import Sample

__all__ = ["AeroscapesData", "aeroscapes_samples"]

_SHOW = 10  # how many offending names an error lists


@FORMATS.register("aeroscapes")
class AeroscapesData(MaskFileData):
    format: Literal["aeroscapes"] = Field(description="The Aeroscapes layout.")
    root: Path = Field(description="Holds JPEGImages/, SegmentationClass/, ImageSets/.")
    train_list: str = Field("trn.txt", description="File in ImageSets/ listing train ids.")
    val_list: str = Field("val.txt", description="File in ImageSets/ listing val ids.")

    def samples(self, split: str, spec: DataSpec) -> list[Sample]:
        """The ids of the split's list, each with its image and mask file."""
        self._check_split(split)
        return aeroscapes_samples(self.root, self.train_list if split == "train" else self.val_list)


def aeroscapes_samples(root: Path, list_name: str) -> list[Sample]:
    """Samples of the ids in ImageSets/<list_name>; an id without both files is an error."""
    list_path = root / "ImageSets" / list_name
    if not list_path.is_file():
        raise DataError(f"Aeroscapes split list {list_path} does not exist")
    ids = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    images = list_images(root / "JPEGImages")
    masks = list_images(root / "SegmentationClass")
    missing_image = [i for i in ids if i not in images]
    missing_mask = [i for i in ids if i not in masks]
    if missing_image or missing_mask:
        raise DataError(
            f"{list_path} lists ids without files: "
            f"{len(missing_image)} missing in JPEGImages ({', '.join(missing_image[:_SHOW])}), "
            f"{len(missing_mask)} missing in SegmentationClass ({', '.join(missing_mask[:_SHOW])})"
        )
    return [Sample(i, images[i], masks[i]) for i in ids]
