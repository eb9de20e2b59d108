"""Test-time augmentation: D4 flips/rotations × scales, batched, deaugmented by head kind.

Modes (each includes the identity):
  none   {identity}
  hflip  {identity, hflip}
  vflip  {identity, vflip}
  d2     {identity, hflip, vflip, rot180}: the flips group (Klein four-group), no rot90,
         so H×W never swaps
  d4     the 8 elements of the dihedral group: rot90^k (k = 0..3) with and without hflip
         (rot90 and rot270, transpose and anti-transpose change H×W into W×H)

Each head undoes the transform its own way (podium.heads: masks and dense maps get the
inverse spatial transform, direction vectors are rotated back, boxes get their corners
mapped back, class scores stay) and merges the variants (`finalize`: vectors back to unit
length, boxes re-sorted).

Reduction: `mean`, `max` or `gmean` of probabilities (the head's activation is applied
BEFORE reducing). `reduce` applies to heads whose outputs are probabilities; the others
(regression) are always averaged arithmetically, since max/gmean of signed values is not
meaningful.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from podium.engine.module import PodiumModule
from podium.geometry import D4, transform_image
from podium.heads import HeadBase
from podium.inference.forward import Inputs, PredictFn, predict_probabilities

__all__ = ["D4", "REDUCTIONS", "TTA_MODES", "tta_apply", "tta_predict", "tta_transforms"]

REDUCTIONS = ("mean", "max", "gmean")
_EPS = 1e-7  # floor of probabilities before their log (gmean)


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


def _head_reduce(head: HeadBase, reduce: str) -> str:
    """Regression heads are always averaged: max/gmean need probabilities."""
    return reduce if head.probabilistic else "mean"


def _accumulate(acc: torch.Tensor, x: torch.Tensor, reduce: str) -> None:
    """In place: acc ← acc ⊕ x for the reduction (sum, max, or sum of logs)."""
    if reduce == "max":
        torch.maximum(acc, x, out=acc)
    elif reduce == "gmean":
        acc.add_(x.clamp_min(_EPS).log())
    else:
        acc.add_(x)


def _finish(head: HeadBase, acc: torch.Tensor, count: int, reduce: str) -> torch.Tensor:
    """Accumulated sum/max/log-sum over `count` variants → the reduced, finalized output."""
    reduce = _head_reduce(head, reduce)
    if reduce == "mean":
        out = acc / count
    elif reduce == "gmean":
        # A geometric mean of distributions (or of sigmoid pairs) is renormalized by the head.
        out = head.renormalize((acc / count).exp())
    else:
        out = acc
    return head.finalize(out)


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
    inputs: Inputs,
) -> list[dict[str, torch.Tensor]]:
    """One model call for all rows of a chunk → per-segment outputs, split back.

    Extra inputs (per image) are not transformed: each variant's rows get their image's.
    """
    images = [transform_image(scaled[s][a:b], t) for (s, t), a, b in segments]
    extras = None
    if inputs is not None:
        extras = {name: torch.cat([x[a:b] for _, a, b in segments]) for name, x in inputs.items()}
    outputs = predict_fn(torch.cat(images) if len(images) > 1 else images[0], extras)
    sizes = [b - a for _, a, b in segments]
    split = {name: out.split(sizes) for name, out in outputs.items()}
    return [{name: parts[i] for name, parts in split.items()} for i in range(len(sizes))]


def _add_segment(
    acc: dict[str, torch.Tensor],
    heads: Mapping[str, HeadBase],
    outputs: dict[str, torch.Tensor],
    t: D4,
    rows: slice,
    batch: int,
    size: tuple[int, int],
    reduce: str,
) -> None:
    """Deaugment one segment's outputs (images `rows` of B) and fold them into acc[head]."""
    for name, out in outputs.items():
        if name not in heads:
            raise KeyError(f"model returned head {name!r} that is not among its heads")
        head = heads[name]
        y = _resize_output(head.deaugment(out.float(), t), size)
        how = _head_reduce(head, reduce)
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
    heads: Mapping[str, HeadBase],
    images: torch.Tensor,
    inputs: Inputs = None,
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
            for ((_, t), a, b), out in zip(segs, _run_chunk(predict_fn, scaled, segs, inputs)):
                _add_segment(acc, heads, out, t, slice(a, b), batch, size, reduce)
    return {name: _finish(heads[name], x, len(variants), reduce) for name, x in acc.items()}


def tta_predict(
    module: PodiumModule,
    images: torch.Tensor,
    inputs: Inputs = None,
    mode: str = "d4",
    scales: Sequence[float] = (1.0,),
    max_batch: int | None = None,
    reduce: str = "mean",
) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W → {head: probabilities} of `module` under TTA (see tta_apply)."""
    fn = functools.partial(predict_probabilities, module)
    images = images.to(module.device)
    return tta_apply(fn, module.heads, images, inputs, mode, scales, max_batch, reduce)
