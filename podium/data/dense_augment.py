"""Augment dense float maps with the image: masks and valid maps nearest, dense values linear.

albumentations 2.x has one `mask_interpolation` per transform for every mask-type target. So
the user's pipeline runs once on image, mask and a stack of per-target layers, and a twin of it
whose transforms interpolate masks linearly runs on the same inputs, both reseeded with one
seed right before the call: they draw the same parameters, and the dense layers are taken from
the twin, everything else from the original. Only samples with dense targets pay the second run.

Each target carries two valid layers, v (1 valid, 0 not) and 1 - v. A pad or out-of-frame pixel
gets the same fill in both, so it can never read as valid whatever `fill_mask` is. A pixel is
valid when its nearest source is valid and its linear footprint touches no invalid or filled
pixel (the twin's valid layers are still exactly 1 and 0), so no blended value is a label.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping

import albumentations as A
import cv2
import numpy as np

from podium.data.copy_paste import CopyPaste
from podium.data.errors import DataError
from podium.data.transforms import walk_transforms

__all__ = ["augment_dense", "linear_twin"]

_EPS = 1e-3  # linear weights sum to 1 up to float rounding


def linear_twin(transform: A.Compose) -> A.Compose:
    """A deep copy of the pipeline whose every transform interpolates masks linearly."""
    if any(isinstance(t, CopyPaste) for t in walk_transforms(transform)):
        raise DataError("CopyPaste pastes class masks only; it cannot be used with dense targets")
    twin = copy.deepcopy(transform)
    for node in walk_transforms(twin):
        if hasattr(node, "mask_interpolation"):
            node.mask_interpolation = cv2.INTER_LINEAR
    return twin


def _layers(dense: Mapping[str, np.ndarray], valid: Mapping[str, np.ndarray]) -> np.ndarray:
    """N×H×W float32: per target v, 1 - v, then its k value channels."""
    layers = []
    for key, values in dense.items():
        v = valid[key].astype(np.float32)
        layers += [v, 1.0 - v, *np.moveaxis(values, 2, 0)]
    return np.stack(layers).astype(np.float32, copy=False)


def _split(
    near: np.ndarray, linear: np.ndarray, dense: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The transformed layers back into {key: k×H×W values} and {key: H×W bool valid}."""
    values, valid, offset = {}, {}, 0
    for key, array in dense.items():
        k = array.shape[2]
        ok = (near[offset] == 1) & (near[offset + 1] == 0)
        ok &= (linear[offset] > 1 - _EPS) & (linear[offset + 1] < _EPS)
        valid[key] = ok
        values[key] = np.ascontiguousarray(linear[offset + 2 : offset + 2 + k], dtype=np.float32)
        offset += 2 + k
    return values, valid


def augment_dense(
    transform: A.Compose | None,
    twin: A.Compose | None,
    image: np.ndarray,
    mask: np.ndarray | None,
    dense: Mapping[str, np.ndarray],
    valid: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """H×W×C image, H×W mask, {key: H×W×k} values, {key: H×W} valid → transformed, values k×H×W.

    Invalid pixels must already hold a finite fill (podium.data.dense.fill_invalid).
    """
    if transform is None or twin is None:
        values = {k: np.ascontiguousarray(np.moveaxis(v, 2, 0)) for k, v in dense.items()}
        return image, mask, values, dict(valid)
    data = {"image": image, "masks": _layers(dense, valid)}
    if mask is not None:
        data["mask"] = mask
    # One seed drawn from the pipeline's own generator (itself reseeded per item by sample
    # keys, or per worker) so both runs draw identical parameters.
    seed = int(transform.random_generator.integers(2**63))
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    near = transform(**data)
    twin.set_random_state(np.random.default_rng(seed), random.Random(seed))
    linear = twin(**data)
    values, ok = _split(near["masks"], linear["masks"], dense)
    return near["image"], near.get("mask"), values, ok
