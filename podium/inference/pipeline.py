"""Compose inference: checkpoints (ensemble or averaged) → TTA → sliding-window tiles.

Every layer is a PredictFn (uint8 B×C×H×W → {head: probabilities}), so they stack freely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from podium.heads import first_of_kind
from podium.inference.ensemble import EnsemblePredictor
from podium.inference.forward import Inputs, rows
from podium.inference.tiles import sliding_window_predict
from podium.inference.tta import tta_apply

__all__ = ["InferenceOptions", "Predictor"]


@dataclass(frozen=True)
class InferenceOptions:
    tta: str = "none"
    scales: tuple[float, ...] = (1.0,)
    tile: int | None = None
    overlap: float = 0.25
    blend: str = "gaussian"
    batch_size: int = 8
    max_batch: int | None = None


class Predictor:
    """uint8 C×H×W image → {head: K×H×W (or K) probabilities}, whatever the options."""

    def __init__(
        self, modules: list, options: InferenceOptions, weights: Sequence[float] | None = None
    ) -> None:
        self.ensemble = EnsemblePredictor(modules, weights)
        self.heads = self.ensemble.heads
        self.device = modules[0].device
        self.options = options
        self.batch_fn: Callable = self.ensemble
        if options.tta != "none" or tuple(options.scales) != (1.0,):
            self.batch_fn = functools.partial(
                tta_apply,
                self.ensemble,
                self.heads,
                mode=options.tta,
                scales=options.scales,
                max_batch=options.max_batch,
            )

    def head_of_kind(self, kind: str) -> str | None:
        """Name of the first head of this kind ("mask", "class"), None when there is none."""
        return first_of_kind(self.heads, kind)

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, inputs: Inputs = None) -> dict[str, torch.Tensor]:
        """One C×H×W image (+ its extra inputs, n values each) → {head: K×H×W or K}."""
        image = image.to(self.device)
        extras = None if inputs is None else {n: x.reshape(1, -1) for n, x in inputs.items()}
        o = self.options
        if o.tile is not None and max(image.shape[-2:]) > o.tile:
            return sliding_window_predict(
                self.batch_fn,
                image,
                o.tile,
                o.overlap,
                o.blend,
                o.batch_size,
                self.device,
                self.heads,
                inputs=extras,
            )
        return {name: out[0] for name, out in self.batch_fn(image[None], extras).items()}

    def batch(self, images: torch.Tensor, inputs: Inputs = None) -> dict[str, torch.Tensor]:
        """B×C×H×W of one size (+ B×n inputs); tiles go image by image, else one call."""
        if self.options.tile is not None and max(images.shape[-2:]) > self.options.tile:
            outs = [self(image, rows(inputs, i)) for i, image in enumerate(images)]
            return {name: torch.stack([o[name] for o in outs]) for name in outs[0]}
        with torch.inference_mode():
            extras = None if inputs is None else {n: x.to(self.device) for n, x in inputs.items()}
            return self.batch_fn(images.to(self.device), extras)
