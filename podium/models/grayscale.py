"""One-channel (grayscale) models that recycle a 3-channel encoder's pretrained first conv.

Severstal's strips are grey, so the seed fed 1-channel input and kept the pretrained weights by
recycling the first conv: its out×3×k×k kernel becomes out×1×k×k, taken from the R, G or B slice
(a cheap way to diversify an ensemble) or from the sum over channels.

"sum" is exact for grey input: a grey image x repeated over 3 channels gives w_r*x + w_g*x +
w_b*x = (w_r + w_g + w_b)*x, so the 1-channel model computes what the 3-channel one did on the
repeated image (SMP's own `patch_first_conv` does this for in_channels=1). "mean" is a third
of that, matching the activation scale of one channel. "r"/"g"/"b" keep one slice, so the first
layer responds to the grey level as the pretrained net did to that colour alone.

The model is always built with 3 input channels first, so hub and local weight files load with
their original shapes, and patched afterwards.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from podium.heads import HeadBase
from podium.models.factory import PodiumModel, build_model

__all__ = ["GRAYSCALE_SOURCES", "build_grayscale_model", "find_first_conv", "recycle_first_conv"]

Source = Literal["r", "g", "b", "sum", "mean"]
GRAYSCALE_SOURCES: tuple[str, ...] = ("r", "g", "b", "sum", "mean")


def find_first_conv(module: nn.Module, in_channels: int = 3) -> nn.Conv2d:
    """The first nn.Conv2d (subclasses too) with `in_channels` inputs, in module order."""
    for child in module.modules():
        if isinstance(child, nn.Conv2d) and child.in_channels == in_channels:
            return child
    raise ValueError(f"no nn.Conv2d with in_channels={in_channels} in {type(module).__name__}")


def _recycled_weight(weight: torch.Tensor, source: str) -> torch.Tensor:
    """out×3×k×k kernel → out×1×k×k according to source."""
    if source in ("r", "g", "b"):
        k = "rgb".index(source)
        return weight[:, k : k + 1].clone()
    if source == "sum":
        return weight.sum(dim=1, keepdim=True)
    if source == "mean":
        return weight.mean(dim=1, keepdim=True)
    raise ValueError(f"grayscale source must be one of {GRAYSCALE_SOURCES}, got {source!r}")


def _encoder_of(module: nn.Module) -> nn.Module:
    """The encoder inside a PodiumModel / SMP model, else the module itself."""
    return module.encoder if isinstance(getattr(module, "encoder", None), nn.Module) else module


def _record_in_channels(encoder: nn.Module) -> None:
    """Keep SMP's bookkeeping (encoder._in_channels, out_channels[0]) in line with 1 channel."""
    if hasattr(encoder, "_in_channels"):
        encoder._in_channels = 1
    out = getattr(encoder, "_out_channels", None)
    if isinstance(out, (list, tuple)) and out and out[0] == 3:
        # SMP lists the input itself as feature 0, so its channel count leads the list.
        encoder._out_channels = type(out)([1, *out[1:]])


@torch.no_grad()
def recycle_first_conv(model_or_encoder: nn.Module, source: Source = "sum") -> nn.Conv2d:
    """Make the first 3-input conv take 1 channel (weights from `source`); returns that conv.

    The conv is patched in place (weight replaced, bias kept), so subclasses such as
    same-padding convs keep their forward. Raises if no 3-input conv exists or it is grouped.
    """
    encoder = _encoder_of(model_or_encoder)
    conv = find_first_conv(encoder, 3)
    if conv.groups != 1:
        raise ValueError(f"the first conv has groups={conv.groups}; only groups=1 is supported")
    weight = _recycled_weight(conv.weight.detach(), source)
    conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    conv.in_channels = 1
    _record_in_channels(encoder)
    return conv


def build_grayscale_model(
    arch: str,
    encoder_name: str,
    heads: dict[str, HeadBase],
    encoder_weights: str | None = None,
    source: Source = "sum",
    **kwargs: Any,
) -> PodiumModel:
    """build_model with 3 input channels (so weights load), then 1 channel via `source`.

    With encoder_weights None the random 3-channel kernel is recycled the same way: there is
    nothing to preserve, but one code path keeps random-init runs comparable to pretrained ones.
    """
    if source not in GRAYSCALE_SOURCES:
        raise ValueError(f"grayscale source must be one of {GRAYSCALE_SOURCES}, got {source!r}")
    if kwargs.pop("in_channels", 3) != 3:
        raise ValueError("build_grayscale_model builds with in_channels=3 and recycles to 1")
    model = build_model(arch, encoder_name, heads, encoder_weights, in_channels=3, **kwargs)
    recycle_first_conv(model, source)
    return model
