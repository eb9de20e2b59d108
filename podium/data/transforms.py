"""Augmentation pipelines declared in YAML, in albumentations' own serialized form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import albumentations as A
from albumentations.core.serialization import SERIALIZABLE_REGISTRY

from podium.registry import near

__all__ = ["build_transform", "possible_output_sizes", "walk_transforms"]

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


def possible_output_sizes(pipeline: A.BasicTransform | None) -> set[tuple[int, int]]:
    """Every fixed (H, W) the pipeline's output may have; sizes left to the input are not listed.

    Transforms with `height`/`width` (RandomCrop, CenterCrop, Resize, CropNonEmptyMaskIfExists,
    ...) or `size` (RandomResizedCrop, RandomSizedCrop) fix a size. In a sequence, a step that
    always ends at a fixed size replaces the sizes before it; a step that may not run (p < 1)
    or may leave the size alone adds its sizes to them. OneOf/SomeOf: any child's sizes.
    """
    sizes, _ = _output_sizes(pipeline)
    return sizes


def _output_sizes(node: A.BasicTransform | None) -> tuple[set[tuple[int, int]], bool]:
    """(fixed sizes the node may produce, whether it always produces one of them)."""
    if node is None:
        return set(), False
    always = getattr(node, "p", 1.0) >= 1.0
    own = _own_size(node)
    if own is not None:
        return {own}, always
    children = [_output_sizes(child) for child in getattr(node, "transforms", [])]
    if isinstance(node, (A.OneOf, A.SomeOf)):
        # SomeOf may apply several children in order: any of them may end last.
        sizes = set().union(*(c[0] for c in children)) if children else set()
        certain = isinstance(node, A.OneOf) and bool(children) and all(c[1] for c in children)
        return sizes, always and certain
    sizes, certain = set(), False
    for child_sizes, child_certain in children:  # a sequence: Compose, Sequential
        sizes = set(child_sizes) if child_certain else sizes | child_sizes
        certain = certain or child_certain
    return sizes, always and certain


def _own_size(node: A.BasicTransform) -> tuple[int, int] | None:
    size = getattr(node, "size", None)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    height, width = getattr(node, "height", None), getattr(node, "width", None)
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    return None


def walk_transforms(transform: Any) -> Iterator[Any]:
    """The transform and every transform nested in it (OneOf, Sequential, ...), depth first."""
    if transform is None:
        return
    yield transform
    for child in getattr(transform, "transforms", []):
        yield from walk_transforms(child)
