"""Dataset layouts on disk → lists of (image, mask) samples, with strict pairing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podium.data.errors import DataError
from podium.data.images import IMAGE_EXTENSIONS

__all__ = ["Sample", "aeroscapes_samples", "folder_samples", "list_images"]

_SHOW = 10  # how many offending names an error lists


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    mask: Path | None = None


def list_images(folder: Path) -> dict[str, Path]:
    """Stem → image path; two images with one stem is an error."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"two files share the stem {path.stem!r}: {found[path.stem]} and {path}"
            )
        found[path.stem] = path
    return found


def folder_samples(images: Path, masks: Path | None) -> list[Sample]:
    """images/ and masks/ paired by file stem; unpaired files on either side are an error."""
    image_paths = list_images(images)
    if not image_paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {images}")
    if masks is None:
        return [Sample(stem, path) for stem, path in image_paths.items()]
    mask_paths = list_images(masks)
    _check_pairs(set(image_paths), set(mask_paths), images, masks)
    return [Sample(stem, image_paths[stem], mask_paths[stem]) for stem in image_paths]


def _check_pairs(image_stems: set[str], mask_stems: set[str], images: Path, masks: Path) -> None:
    no_mask = sorted(image_stems - mask_stems)
    no_image = sorted(mask_stems - image_stems)
    problems = []
    if no_mask:
        problems.append(
            f"{len(no_mask)} image(s) in {images} have no mask in {masks}: "
            f"{', '.join(no_mask[:_SHOW])}"
        )
    if no_image:
        problems.append(
            f"{len(no_image)} mask(s) in {masks} have no image in {images}: "
            f"{', '.join(no_image[:_SHOW])}"
        )
    if problems:
        raise DataError("unpaired files: " + "; ".join(problems))


def aeroscapes_samples(root: Path, list_name: str) -> list[Sample]:
    """Aeroscapes: JPEGImages/<id>.jpg, SegmentationClass/<id>.png, ImageSets/<list>."""
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
