"""Sliding-window (tiled) inference for images larger than the model should see at once.

The image is reflect-padded (replicate when it is smaller than the padding) so that a
regular grid of full-size windows with the requested overlap covers it exactly; windows
go through `predict_fn` in batches; each batch's outputs are multiplied by the blend
weight and added into float32 accumulators on the device (windows' outputs are never all
held at once); the weighted sum is divided by the summed weights and cropped back.

Only spatial heads (4-D outputs, B×K×t×t) are tiled. Image-level heads (class, scalar,
box, B×2 vector) are dropped: a per-tile class or a box in tile coordinates does not
describe the whole image, so averaging them over tiles would be misleading; run those
heads on the whole (or a downscaled) image instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from podium.heads import HeadBase
from podium.inference.forward import Inputs, PredictFn

__all__ = ["BLENDS", "blend_weights", "sliding_window_predict", "window_grid"]

BLENDS = ("gaussian", "linear", "constant")


def _pair(tile: int | tuple[int, int]) -> tuple[int, int]:
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    if th < 1 or tw < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    return int(th), int(tw)


def _profile(length: int, blend: str, sigma_scale: float) -> torch.Tensor:
    """1-D weight profile of one window side, max 1 at the centre, > 0 everywhere."""
    pos = torch.arange(length, dtype=torch.float64)
    centre = (length - 1) / 2
    if blend == "gaussian":
        sigma = max(sigma_scale * length, 1e-3)
        return torch.exp(-0.5 * ((pos - centre) / sigma) ** 2)
    if blend == "linear":  # tent: ≈1 at the centre, 1/(2·ceil(t/2)) at the edges, never 0
        half = math.ceil(length / 2)
        return (half - (pos - centre).abs()) / half
    if blend == "constant":
        return torch.ones(length, dtype=torch.float64)
    raise ValueError(f"unknown blend {blend!r}; valid: {', '.join(BLENDS)}")


def blend_weights(
    tile: int | tuple[int, int],
    blend: str = "gaussian",
    sigma_scale: float = 0.125,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """th×tw float32 window weights (outer product of 1-D profiles; MONAI's sigma 0.125·t)."""
    th, tw = _pair(tile)
    w = torch.outer(_profile(th, blend, sigma_scale), _profile(tw, blend, sigma_scale))
    # Gaussian corners underflow towards 0; a floor keeps every pixel's weight sum positive.
    return w.clamp_min(1e-6).to(torch.float32).to(device)


def window_grid(size: int, tile: int, overlap: float) -> tuple[int, int, list[int]]:
    """One axis → (padded size, padding before, window starts in padded coordinates)."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    stride = max(1, round(tile * (1 - overlap)))
    count = 1 if size <= tile else math.ceil((size - tile) / stride) + 1
    padded = (count - 1) * stride + tile
    # Split the padding so both borders get context, rather than all of it at one side.
    return padded, (padded - size) // 2, [i * stride for i in range(count)]


def _pad_image(image: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """C×H×W uint8, (left, right, top, bottom) → padded C×H'×W' uint8."""
    if not any(pads):
        return image
    h, w = image.shape[-2:]
    fits = max(pads[:2]) < w and max(pads[2:]) < h  # reflect needs pad < size
    out = F.pad(image[None].float(), pads, mode="reflect" if fits else "replicate")[0]
    return out.round_().to(image.dtype)


def _add_batch(
    acc: dict[str, torch.Tensor],
    outputs: Mapping[str, torch.Tensor],
    corners: list[tuple[int, int]],
    weight: torch.Tensor,
    padded: tuple[int, int],
) -> None:
    """Fold one batch of window outputs (B×K×t×t) into acc[head] (K×H'×W'), weighted."""
    th, tw = weight.shape
    for name, out in outputs.items():
        if out.dim() != 4:
            continue  # image-level head: not tiled (see the module docstring)
        if tuple(out.shape[-2:]) != (th, tw):
            raise ValueError(
                f"head {name!r} returned {tuple(out.shape[-2:])} for a {th}×{tw} window; "
                "predict_fn must return spatial outputs at the window's size"
            )
        if name not in acc:
            acc[name] = torch.zeros((out.shape[1], *padded), device=weight.device)
        weighted = out.to(weight.device, torch.float32) * weight
        for (y, x), part in zip(corners, weighted):
            acc[name][:, y : y + th, x : x + tw] += part


@torch.inference_mode()
def sliding_window_predict(
    predict_fn: PredictFn,
    image: torch.Tensor,
    tile: int | tuple[int, int],
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    device: torch.device | str | None = None,
    heads: Mapping[str, HeadBase] | None = None,
    sigma_scale: float = 0.125,
    inputs: Inputs = None,
) -> dict[str, torch.Tensor]:
    """uint8 C×H×W → {spatial head: K×H×W float32} blended over overlapping windows.

    predict_fn: (uint8 B×C×th×tw, inputs) → {head: B×K×th×tw probabilities} (a module, TTA,
    an ensemble). inputs: the image's extra inputs (1×n each), given to every window.
    With `heads`, each head finalizes its blended output (vector fields renormalized).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    device = torch.device(device) if device is not None else image.device
    (th, tw), (h, w) = _pair(tile), image.shape[-2:]
    hp, top, ys = window_grid(h, th, overlap)
    wp, left, xs = window_grid(w, tw, overlap)
    padded = _pad_image(image.to(device), (left, wp - w - left, top, hp - h - top))
    weight = blend_weights((th, tw), blend, sigma_scale, device)
    corners = [(y, x) for y in ys for x in xs]
    acc: dict[str, torch.Tensor] = {}
    weight_sum = torch.zeros((1, hp, wp), device=device)
    for i in range(0, len(corners), batch_size):
        batch = corners[i : i + batch_size]
        crops = torch.stack([padded[:, y : y + th, x : x + tw] for y, x in batch])
        extras = None
        if inputs is not None:
            extras = {n: x.to(device).expand(len(batch), *x.shape[1:]) for n, x in inputs.items()}
        _add_batch(acc, predict_fn(crops, extras), batch, weight, (hp, wp))
        for y, x in batch:
            weight_sum[:, y : y + th, x : x + tw] += weight
    if not acc:
        raise ValueError("predict_fn returned no spatial (B×K×H×W) head to tile")
    crop = (slice(None), slice(top, top + h), slice(left, left + w))
    return {n: _finalize(n, (a / weight_sum)[crop], heads) for n, a in acc.items()}


def _finalize(name: str, x: torch.Tensor, heads: Mapping[str, HeadBase] | None) -> torch.Tensor:
    """K×H×W blended output → finalized by its head when the heads are known."""
    if heads is None or name not in heads:
        return x
    return heads[name].finalize(x[None])[0]
