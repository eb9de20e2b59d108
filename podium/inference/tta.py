"""Test-time augmentation: D4 flips/rotations × scales, batched, deaugmented by head kind.

Modes (each includes the identity):
  none   {identity}
  hflip  {identity, hflip}
  vflip  {identity, vflip}
  d2     {identity, hflip, vflip, rot180}: the flips group (Klein four-group), no rot90,
         so H×W never swaps
  d4     the 8 elements of the dihedral group: rot90^k (k = 0..3) with and without hflip
         (rot90 and rot270, transpose and anti-transpose change H×W into W×H)

Coordinates: x runs along W (to the right), y along H (downwards). `vector` heads hold
(x, y) pairs on dim 1, e.g. (cos θ, sin θ): B×2, or B×2k×H×W fields; `box` heads hold
normalized (x1, y1, x2, y2) on the last dim.

Reduction: `mean`, `max` or `gmean` of probabilities (the head's activation is applied
BEFORE reducing). `reduce` applies to heads with a softmax/sigmoid activation; heads
without one (regression: dense, vector, scalar, box) are always averaged arithmetically,
since max/gmean of signed values is not meaningful. After reducing, vectors are
renormalized to unit length and boxes re-sorted so that x1 ≤ x2, y1 ≤ y2.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from podium.engine.module import PodiumModule
from podium.geometry import D4, inverse_image, transform_image
from podium.inference.forward import PredictFn, head_specs, predict_probabilities
from podium.models import HeadSpec

__all__ = [
    "D4",
    "HEAD_KINDS",
    "REDUCTIONS",
    "TTA_MODES",
    "augment_output",
    "deaugment_output",
    "finalize_head",
    "inverse_image",
    "normalize_vectors",
    "transform_image",
    "tta_apply",
    "tta_predict",
    "tta_transforms",
]

HEAD_KINDS = ("mask", "dense", "vector", "scalar", "class", "box")
REDUCTIONS = ("mean", "max", "gmean")
_EPS = 1e-7


Variant = tuple[float, D4]  # (scale, D4 element): one augmented copy of the batch

TTA_MODES: dict[str, tuple[D4, ...]] = {
    "none": (D4(),),
    "hflip": (D4(), D4(0, True)),
    "vflip": (D4(), D4(2, True)),
    "d2": (D4(), D4(0, True), D4(2, True), D4(2)),
    "d4": tuple(D4(rot, flip) for flip in (False, True) for rot in range(4)),
}


def tta_transforms(mode: str) -> tuple[D4, ...]:
    """The D4 elements of a TTA mode (see the module docstring)."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; valid: {', '.join(TTA_MODES)}")
    return TTA_MODES[mode]


def _rotate_xy(
    x: torch.Tensor, y: torch.Tensor, k: int, offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """k quarter turns of torch.rot90: (x, y) ↦ (y, offset - x); offset 1 for points, 0 vectors."""
    for _ in range(k % 4):
        x, y = y, offset - x
    return x, y


def _map_xy(
    x: torch.Tensor, y: torch.Tensor, t: D4, offset: float, inverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply t (or its inverse) to coordinates; offset=1 for normalized points, 0 vectors."""
    if not inverse and t.hflip:
        x = offset - x
    x, y = _rotate_xy(x, y, -t.rot if inverse else t.rot, offset)
    if inverse and t.hflip:
        x = offset - x
    return x, y


def _transform_vectors(v: torch.Tensor, t: D4, inverse: bool) -> torch.Tensor:
    """B×2k(×H×W) (x, y) pairs on dim 1 → the same pairs seen through t (or its inverse)."""
    if v.shape[1] % 2:
        raise ValueError(f"vector head needs (x, y) pairs on dim 1, got shape {tuple(v.shape)}")
    pairs = v.unflatten(1, (-1, 2))
    x, y = _map_xy(pairs[:, :, 0], pairs[:, :, 1], t, 0.0, inverse)
    return torch.stack((x, y), dim=2).flatten(1, 2)


def _transform_boxes(b: torch.Tensor, t: D4, inverse: bool) -> torch.Tensor:
    """…×4 normalized (x1, y1, x2, y2) → mapped corners, re-sorted so x1 ≤ x2, y1 ≤ y2."""
    if b.shape[-1] != 4:
        raise ValueError(f"box head needs (x1, y1, x2, y2) on the last dim, got {tuple(b.shape)}")
    x1, y1 = _map_xy(b[..., 0], b[..., 1], t, 1.0, inverse)
    x2, y2 = _map_xy(b[..., 2], b[..., 3], t, 1.0, inverse)
    return _sort_boxes(torch.stack((x1, y1, x2, y2), dim=-1))


def _sort_boxes(b: torch.Tensor) -> torch.Tensor:
    x1, x2 = torch.minimum(b[..., 0], b[..., 2]), torch.maximum(b[..., 0], b[..., 2])
    y1, y2 = torch.minimum(b[..., 1], b[..., 3]), torch.maximum(b[..., 1], b[..., 3])
    return torch.stack((x1, y1, x2, y2), dim=-1)


def _transform_output(kind: str, x: torch.Tensor, t: D4, inverse: bool) -> torch.Tensor:
    spatial = inverse_image if inverse else transform_image
    if kind in ("mask", "dense"):
        return spatial(x, t)
    if kind == "vector":
        x = spatial(x, t) if x.dim() == 4 else x
        return _transform_vectors(x, t, inverse)
    if kind in ("scalar", "class"):
        return x
    if kind == "box":
        return _transform_boxes(x, t, inverse)
    raise ValueError(f"unknown head kind {kind!r}; valid: {', '.join(HEAD_KINDS)}")


def augment_output(kind: str, x: torch.Tensor, t: D4) -> torch.Tensor:
    """A head output of kind `kind` for an image → the output expected for t(image)."""
    return _transform_output(kind, x, t, inverse=False)


def deaugment_output(kind: str, x: torch.Tensor, t: D4) -> torch.Tensor:
    """A head output for t(image) → the output in the original image's frame."""
    return _transform_output(kind, x, t, inverse=True)


def normalize_vectors(v: torch.Tensor) -> torch.Tensor:
    """B×2k(×H×W) (x, y) pairs on dim 1 → unit length (zero vectors stay ~zero)."""
    pairs = v.unflatten(1, (-1, 2))
    pairs = pairs / pairs.norm(dim=2, keepdim=True).clamp_min(_EPS)
    return pairs.flatten(1, 2)


def finalize_head(kind: str, x: torch.Tensor) -> torch.Tensor:
    """After averaging: vectors back to unit length, boxes re-sorted; other kinds as is."""
    if kind == "vector":
        return normalize_vectors(x)
    if kind == "box":
        return _sort_boxes(x)
    return x


def _head_reduce(spec: HeadSpec, reduce: str) -> str:
    """Regression heads (no activation) are always averaged: max/gmean need probabilities."""
    return reduce if spec.activation in ("softmax", "sigmoid") else "mean"


def _accumulate(acc: torch.Tensor, x: torch.Tensor, reduce: str) -> None:
    """In place: acc ← acc ⊕ x for the reduction (sum, max, or sum of logs)."""
    if reduce == "max":
        torch.maximum(acc, x, out=acc)
    elif reduce == "gmean":
        acc.add_(x.clamp_min(_EPS).log())
    else:
        acc.add_(x)


def _finish(spec: HeadSpec, acc: torch.Tensor, count: int, reduce: str) -> torch.Tensor:
    """Accumulated sum/max/log-sum over `count` variants → the reduced, finalized output."""
    reduce = _head_reduce(spec, reduce)
    if reduce == "mean":
        out = acc / count
    elif reduce == "gmean":
        out = (acc / count).exp()
        if spec.activation == "softmax":  # a geometric mean of distributions must sum to 1
            out = out / out.sum(dim=1, keepdim=True)
    else:
        out = acc
    return finalize_head(spec.kind, out)


def _resize_images(images: torch.Tensor, scale: float) -> torch.Tensor:
    """uint8 B×C×H×W → uint8 B×C×round(sH)×round(sW), bilinear (antialiased when shrinking)."""
    if scale == 1.0:
        return images
    h, w = images.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = F.interpolate(
        images.float(), size=size, mode="bilinear", align_corners=False, antialias=scale < 1
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _resize_output(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Spatial (4-D) outputs back to H×W; image-level outputs unchanged."""
    if x.dim() != 4 or tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _segments(start: int, stop: int, batch: int) -> list[tuple[int, int, int]]:
    """Rows [start, stop) of variant-major stacked rows → (variant, first, last+1 image)."""
    out = []
    for v in range(start // batch, (stop - 1) // batch + 1):
        out.append((v, max(start, v * batch) - v * batch, min(stop, (v + 1) * batch) - v * batch))
    return out


def _chunks(
    group: Sequence[Variant], batch: int, max_batch: int | None
) -> list[list[tuple[Variant, int, int]]]:
    """A group's variant-major rows (len(group)·B) cut into model calls of ≤ max_batch rows."""
    rows = len(group) * batch
    step = max_batch or rows
    return [
        [(group[v], a, b) for v, a, b in _segments(start, min(start + step, rows), batch)]
        for start in range(0, rows, step)
    ]


def _group_by_shape(
    variants: Sequence[Variant], sizes: Mapping[float, tuple[int, int]]
) -> dict[tuple[int, int], list[Variant]]:
    """Variants whose model inputs share H×W go through the model together."""
    groups: dict[tuple[int, int], list[Variant]] = {}
    for scale, t in variants:
        h, w = sizes[scale]
        groups.setdefault((w, h) if t.swaps_hw else (h, w), []).append((scale, t))
    return groups


def _run_chunk(
    predict_fn: PredictFn,
    scaled: Mapping[float, torch.Tensor],
    segments: list[tuple[Variant, int, int]],
) -> list[dict[str, torch.Tensor]]:
    """One model call for all rows of a chunk → per-segment outputs, split back."""
    inputs = [transform_image(scaled[s][a:b], t) for (s, t), a, b in segments]
    outputs = predict_fn(torch.cat(inputs) if len(inputs) > 1 else inputs[0])
    sizes = [b - a for _, a, b in segments]
    split = {name: out.split(sizes) for name, out in outputs.items()}
    return [{name: parts[i] for name, parts in split.items()} for i in range(len(sizes))]


def _add_segment(
    acc: dict[str, torch.Tensor],
    specs: Mapping[str, HeadSpec],
    outputs: dict[str, torch.Tensor],
    t: D4,
    rows: slice,
    batch: int,
    size: tuple[int, int],
    reduce: str,
) -> None:
    """Deaugment one segment's outputs (images `rows` of B) and fold them into acc[head]."""
    for name, out in outputs.items():
        if name not in specs:
            raise KeyError(f"model returned head {name!r} that has no HeadSpec")
        spec = specs[name]
        y = _resize_output(deaugment_output(spec.kind, out.float(), t), size)
        how = _head_reduce(spec, reduce)
        if name not in acc:
            fill = float("-inf") if how == "max" else 0.0
            acc[name] = torch.full((batch, *y.shape[1:]), fill, device=y.device)
        _accumulate(acc[name][rows], y, how)


def _check_args(scales: Sequence[float], max_batch: int | None, reduce: str) -> None:
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown TTA reduction {reduce!r}; valid: {', '.join(REDUCTIONS)}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"TTA scales must be a non-empty list of positive numbers, got {scales}")
    if max_batch is not None and max_batch < 1:
        raise ValueError(f"max_batch must be ≥ 1 or None, got {max_batch}")


@torch.inference_mode()
def tta_apply(
    predict_fn: PredictFn,
    specs: Mapping[str, HeadSpec],
    images: torch.Tensor,
    mode: str = "d4",
    scales: Sequence[float] = (1.0,),
    max_batch: int | None = None,
    reduce: str = "mean",
) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W → {head: reduced probabilities}, B×K×H×W spatial, B×K image-level.

    All variants sharing an input shape are stacked into one batch (chunks of `max_batch`
    rows if set): square images at one scale make one model call for all 8·B d4 variants;
    non-square d4 makes two (H×W and W×H), and each scale its own.
    """
    _check_args(scales, max_batch, reduce)
    batch, size = images.shape[0], tuple(images.shape[-2:])
    scaled = {s: _resize_images(images, s) for s in dict.fromkeys(scales)}
    variants = [(s, t) for s in scales for t in tta_transforms(mode)]
    acc: dict[str, torch.Tensor] = {}
    sizes = {s: tuple(x.shape[-2:]) for s, x in scaled.items()}
    for group in _group_by_shape(variants, sizes).values():
        for segs in _chunks(group, batch, max_batch):
            for ((_, t), a, b), out in zip(segs, _run_chunk(predict_fn, scaled, segs)):
                _add_segment(acc, specs, out, t, slice(a, b), batch, size, reduce)
    return {name: _finish(specs[name], x, len(variants), reduce) for name, x in acc.items()}


def tta_predict(
    module: PodiumModule,
    images: torch.Tensor,
    mode: str = "d4",
    scales: Sequence[float] = (1.0,),
    max_batch: int | None = None,
    reduce: str = "mean",
) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W → {head: probabilities} of `module` under TTA (see tta_apply)."""
    fn = functools.partial(predict_probabilities, module)
    images = images.to(module.device)
    return tta_apply(fn, head_specs(module), images, mode, scales, max_batch, reduce)
