"""Copy-paste augmentation for semantic masks, after "Simple Copy-Paste" (Ghiasi et al. 2021).

Connected components of chosen classes are cut from a donor training image and pasted at
random places of the current image; image and mask change together, so later transforms in
the same `A.Compose` (flips, crops, colour) see and move the pasted objects like any other.

Rules:
- An object is the pixels of one 8-connected component of one class, so ignore pixels
  (and every other class) next to it in the donor are never pasted as labels.
- The object's pixels overwrite the destination mask with the object's class, also where the
  destination held the ignore index: the pasted object is a real, fully known object there.
- With `blend_sigma > 0` only the image edges are feathered (Gaussian-blurred alpha, which also
  shows a rim of donor context just outside the object); the mask stays hard.
- `class_weights` (aligned with `classes`) pick which class to paste among those the donor
  holds, so a higher weight (e.g. 1/frequency for rare classes) means more pastes of it.

Donors are any sequence of (H×W×C uint8 image, H×W uint8 mask) pairs, e.g. `DonorPool` over
the training samples, or a zero-argument callable returning one pair. Deserialised from YAML
(`A.from_dict`) the transform has no donors yet: give them with `set_donors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from albumentations.core.transforms_interface import DualTransform

from podium.data.errors import DataError
from podium.data.images import read_image
from podium.data.sample import Sample
from podium.data.transforms import walk_transforms

__all__ = [
    "CopyPaste",
    "attach_donors",
    "DonorPool",
    "PastedObject",
    "choose_objects",
    "cut_object",
    "find_objects",
    "paste_image",
    "paste_mask",
]

Pair = tuple[np.ndarray, np.ndarray]
Donors = Sequence[Pair] | Callable[[], Pair]
# (class id, top, left, component mask cropped to its bounding box: h×w bool)
Component = tuple[int, int, int, np.ndarray]


@dataclass(frozen=True)
class PastedObject:
    """One object ready to paste at (y, x): image h×w×C, alpha h×w float32, label h×w bool."""

    y: int
    x: int
    image: np.ndarray
    alpha: np.ndarray | None  # None: hard paste exactly on `label`
    label: np.ndarray
    class_id: int


class DonorPool:
    """Training samples read on demand as (H×W×C uint8 image, H×W uint8 mask) pairs."""

    def __init__(
        self, samples: Sequence[Sample], read_mask: Callable[[Path], np.ndarray], channels: int = 3
    ) -> None:
        self.samples = [s for s in samples if s.mask is not None]
        if not self.samples:
            raise DataError("copy-paste needs training samples with masks to take objects from")
        self.read_mask = read_mask
        self.channels = channels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Pair:
        sample = self.samples[index]
        return read_image(sample.image, self.channels), self.read_mask(sample.mask)


def find_objects(mask: np.ndarray, classes: Sequence[int], min_area: int) -> list[Component]:
    """H×W class ids → the 8-connected components of `classes` with ≥ min_area pixels."""
    found: list[Component] = []
    for class_id in classes:
        binary = (mask == class_id).astype(np.uint8)
        if not binary.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for k in range(1, count):  # 0 is everything that is not this class
            x, y, w, h, area = (int(v) for v in stats[k])
            if area >= min_area:
                found.append((class_id, y, x, labels[y : y + h, x : x + w] == k))
    return found


def choose_objects(
    objects: list[Component], weights: dict[int, float], count: int, rng: np.random.Generator
) -> list[Component]:
    """Up to `count` objects without replacement: class ∝ weight, then uniform within class."""
    remaining = list(objects)
    chosen = []
    while remaining and len(chosen) < count:
        classes = sorted({obj[0] for obj in remaining})
        p = np.array([weights[c] for c in classes], dtype=np.float64)
        class_id = classes[int(rng.choice(len(classes), p=p / p.sum()))]
        of_class = [i for i, obj in enumerate(remaining) if obj[0] == class_id]
        chosen.append(remaining.pop(of_class[int(rng.integers(len(of_class)))]))
    return chosen


def cut_object(donor: np.ndarray, obj: Component, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Donor H×W×C and one component → (image patch, bool label) grown by `margin` pixels."""
    _, top, left, component = obj
    h, w = component.shape
    y0, x0 = max(top - margin, 0), max(left - margin, 0)
    y1, x1 = min(top + h + margin, donor.shape[0]), min(left + w + margin, donor.shape[1])
    label = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    label[top - y0 : top - y0 + h, left - x0 : left - x0 + w] = component
    return donor[y0:y1, x0:x1], label


def _resize(patch: np.ndarray, label: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Patch (linear) and bool label (nearest) rescaled together, at least 1×1."""
    if scale == 1.0:
        return patch, label
    h, w = max(1, round(label.shape[0] * scale)), max(1, round(label.shape[1] * scale))
    image = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(label.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    # cv2 drops a single channel axis; put it back so the patch matches the destination.
    return image.reshape(h, w, *patch.shape[2:]), small.astype(bool)


def _alpha(label: np.ndarray, sigma: float) -> np.ndarray | None:
    """h×w float32 feathered alpha, or None for a hard paste (sigma 0)."""
    if sigma <= 0:
        return None
    return cv2.GaussianBlur(label.astype(np.float32), (0, 0), sigmaX=sigma)


def paste_image(image: np.ndarray, objects: Sequence[PastedObject]) -> np.ndarray:
    """H×W×C image with the objects drawn in order (later ones on top)."""
    out = image.copy()
    for obj in objects:
        h, w = obj.label.shape
        region = out[obj.y : obj.y + h, obj.x : obj.x + w]
        if obj.alpha is None:
            region[obj.label] = obj.image[obj.label]
            continue
        alpha = obj.alpha.reshape(h, w, *([1] * (region.ndim - 2)))
        blended = alpha * obj.image.astype(np.float32) + (1 - alpha) * region.astype(np.float32)
        integer = np.issubdtype(out.dtype, np.integer)
        region[...] = np.clip(np.rint(blended), 0, 255) if integer else blended
    return out


def paste_mask(mask: np.ndarray, objects: Sequence[PastedObject]) -> np.ndarray:
    """H×W ids with each object's class written on exactly its own pixels."""
    out = mask.copy()
    for obj in objects:
        h, w = obj.label.shape
        out[obj.y : obj.y + h, obj.x : obj.x + w][obj.label] = obj.class_id
    return out


class CopyPaste(DualTransform):
    """Paste up to `max_objects` class components from a donor image into image and mask.

    Args:
        classes: class ids whose connected components may be pasted (never the ignore index).
        donors: sequence of (image, mask) pairs or a callable returning one; see `set_donors`.
        class_weights: one weight per entry of `classes`; None pastes classes uniformly.
        max_objects: each call pastes 1..max_objects objects (fewer if the donor has fewer).
        scale_range: (low, high) factor drawn uniformly per object; (1, 1) keeps donor size.
        blend_sigma: Gaussian sigma (pixels) feathering the image edges; 0 pastes hard edges.
        min_area: components smaller than this many donor pixels are not pasted.
        ignore_index: the mask's ignore value, checked not to be among `classes`.
        p: probability of applying the transform.
    """

    def __init__(
        self,
        classes: Sequence[int],
        donors: Donors | None = None,
        class_weights: Sequence[float] | None = None,
        max_objects: int = 3,
        scale_range: Sequence[float] = (1.0, 1.0),
        blend_sigma: float = 0.0,
        min_area: int = 16,
        ignore_index: int | None = None,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        _check_args(classes, class_weights, max_objects, scale_range, blend_sigma, ignore_index)
        self.classes = [int(c) for c in classes]
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.max_objects = int(max_objects)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.blend_sigma = float(blend_sigma)
        self.min_area = int(min_area)
        self.ignore_index = ignore_index
        self._donors = donors  # private: kept out of to_dict, it is data, not configuration

    def set_donors(self, donors: Donors) -> CopyPaste:
        """Attach the donor pool (needed after building the transform from YAML)."""
        self._donors = donors
        return self

    @property
    def targets_as_params(self) -> list[str]:
        return ["image", "mask"]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return (
            "classes",
            "class_weights",
            "max_objects",
            "scale_range",
            "blend_sigma",
            "min_area",
            "ignore_index",
        )

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw a donor and place its objects on this image: {"objects": [PastedObject]}."""
        image = data["image"]
        donor_image, donor_mask = self._draw_donor()
        if donor_image.shape[2:] != image.shape[2:] or donor_mask.shape != donor_image.shape[:2]:
            raise DataError(
                f"copy-paste donor image {donor_image.shape} / mask {donor_mask.shape} do not "
                f"match each other or the image's channels {image.shape}"
            )
        weights = dict(zip(self.classes, self.class_weights or [1.0] * len(self.classes)))
        count = int(self.random_generator.integers(1, self.max_objects + 1))
        found = find_objects(donor_mask, self.classes, self.min_area)
        chosen = choose_objects(found, weights, count, self.random_generator)
        return {"objects": [self._place(donor_image, obj, image.shape[:2]) for obj in chosen]}

    def _draw_donor(self) -> Pair:
        """One (image, mask) pair: uniform over a sequence, or whatever the callable returns."""
        if self._donors is None:
            raise RuntimeError("CopyPaste has no donors: call set_donors(DonorPool(...)) first")
        if callable(self._donors):
            return self._donors()
        return self._donors[int(self.random_generator.integers(len(self._donors)))]

    def _place(self, donor: np.ndarray, obj: Component, size: tuple[int, int]) -> PastedObject:
        """Cut, jitter the scale of, and position one object inside an H×W destination."""
        margin = int(np.ceil(3 * self.blend_sigma))  # room for the feathered rim
        patch, label = cut_object(donor, obj, margin)
        scale = float(self.random_generator.uniform(*self.scale_range))
        # An object larger than the destination is shrunk to fit instead of being cut off.
        scale = min(scale, size[0] / label.shape[0], size[1] / label.shape[1])
        patch, label = _resize(patch, label, scale)
        y = int(self.random_generator.integers(0, size[0] - label.shape[0] + 1))
        x = int(self.random_generator.integers(0, size[1] - label.shape[1] + 1))
        return PastedObject(y, x, patch, _alpha(label, self.blend_sigma), label, obj[0])

    def apply(self, img: np.ndarray, objects: Sequence[PastedObject] = (), **params) -> np.ndarray:
        return paste_image(img, objects)

    def apply_to_mask(
        self, mask: np.ndarray, objects: Sequence[PastedObject] = (), **params
    ) -> np.ndarray:
        return paste_mask(mask, objects)


def attach_donors(
    transform: Any,
    samples: Sequence[Sample],
    read_mask: Callable[[Path], np.ndarray],
    channels: int,
) -> None:
    """Give every CopyPaste of the pipeline a DonorPool over these training samples.

    Built from YAML the transform has no donors; nothing is read unless the pipeline pastes.
    """
    pastes = [t for t in walk_transforms(transform) if isinstance(t, CopyPaste)]
    if pastes:
        pool = DonorPool(samples, read_mask, channels)
        for paste in pastes:
            paste.set_donors(pool)


def _check_args(
    classes: Sequence[int],
    class_weights: Sequence[float] | None,
    max_objects: int,
    scale_range: Sequence[float],
    blend_sigma: float,
    ignore_index: int | None,
) -> None:
    """Raise ValueError for arguments CopyPaste cannot use."""
    if not classes:
        raise ValueError("CopyPaste needs at least one class id in `classes`")
    if ignore_index is not None and ignore_index in classes:
        raise ValueError(f"CopyPaste classes include the ignore index {ignore_index}")
    if class_weights is not None and (
        len(class_weights) != len(classes) or min(class_weights) <= 0
    ):
        raise ValueError("class_weights needs one positive weight per entry of classes")
    if max_objects < 1:
        raise ValueError(f"max_objects must be at least 1, got {max_objects}")
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
    if blend_sigma < 0:
        raise ValueError(f"blend_sigma must be >= 0, got {blend_sigma}")
