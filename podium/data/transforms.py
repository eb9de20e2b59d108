"""Augmentation pipelines declared in YAML, in albumentations' own serialized form."""

from __future__ import annotations

from typing import Any

import albumentations as A
from albumentations.core.serialization import SERIALIZABLE_REGISTRY

from podium.config_checks import near

__all__ = ["build_transform", "fixed_output_size"]

# Done on the device by the engine; in workers they would ship 4x more bytes as float32.
_DEVICE_SIDE = {"Normalize", "ToTensorV2", "ToFloat"}


def build_transform(spec: Any) -> A.Compose | None:
    """Accepts A.to_dict() output, a bare Compose dict, or a list of transform dicts.

    podium's own transforms (podium.data.copy_paste.CopyPaste) sit in the same list.
    """
    import podium.data.copy_paste  # noqa: F401  (registers CopyPaste for A.from_dict)

    if spec is None:
        return None
    if isinstance(spec, list):
        spec = {"__class_fullname__": "Compose", "transforms": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"augmentation must be a mapping or a list, got {type(spec).__name__}")
    if "transform" not in spec:
        spec = {"transform": spec}
    _check_names(spec["transform"])
    pipeline = A.from_dict(spec)
    if not isinstance(pipeline, A.Compose):
        pipeline = A.Compose([pipeline])
    return pipeline


def _check_names(node: dict[str, Any]) -> None:
    name = node.get("__class_fullname__")
    if name is None:
        raise ValueError(f"augmentation entry {node!r} has no '__class_fullname__'")
    short = name.rsplit(".", 1)[-1]
    known = [key.rsplit(".", 1)[-1] for key in SERIALIZABLE_REGISTRY]
    if name not in SERIALIZABLE_REGISTRY and short not in known:
        raise ValueError(f"unknown albumentations transform {name!r}.{near(short, known)}")
    if short in _DEVICE_SIDE:
        raise ValueError(
            f"augmentation {short!r} is not needed: podium ships uint8 and normalizes on the "
            "device; remove it and set data.mean / data.std instead"
        )
    for child in node.get("transforms", []):
        _check_names(child)


def fixed_output_size(pipeline: A.BasicTransform | None) -> tuple[int, int] | None:
    """(H, W) set by the pipeline's last crop/resize to a fixed size, else None (not known).

    Depth-first, so the last of a OneOf's crops counts; transforms with `height`/`width`
    (RandomCrop, CenterCrop, Resize, CropNonEmptyMaskIfExists, ...) or `size`
    (RandomResizedCrop, RandomSizedCrop) fix the size.
    """
    if pipeline is None:
        return None
    found = None
    for child in getattr(pipeline, "transforms", []):
        found = fixed_output_size(child) or found
    size = getattr(pipeline, "size", None)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    height, width = getattr(pipeline, "height", None), getattr(pipeline, "width", None)
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    return found
