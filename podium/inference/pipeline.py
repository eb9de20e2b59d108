"""Compose inference: checkpoints (ensemble or averaged) → TTA → sliding-window tiles.

Every layer is a PredictFn (uint8 B×C×H×W → {head: probabilities}), so they stack freely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from podium.inference.ensemble import EnsemblePredictor
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
        self.specs = self.ensemble.specs
        self.device = modules[0].device
        self.options = options
        self.batch_fn: Callable = self.ensemble
        if options.tta != "none" or tuple(options.scales) != (1.0,):
            self.batch_fn = functools.partial(
                tta_apply,
                self.ensemble,
                self.specs,
                mode=options.tta,
                scales=options.scales,
                max_batch=options.max_batch,
            )

    def head_of_kind(self, kind: str) -> str | None:
        """Name of the first head of this kind ("mask", "class"), None when there is none."""
        return next((name for name, spec in self.specs.items() if spec.kind == kind), None)

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image = image.to(self.device)
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
                self.specs,
            )
        return {name: out[0] for name, out in self.batch_fn(image[None]).items()}

    def batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """B×C×H×W of one size; tiles go image by image, otherwise one batched call."""
        if self.options.tile is not None and max(images.shape[-2:]) > self.options.tile:
            outs = [self(image) for image in images]
            return {name: torch.stack([o[name] for o in outs]) for name in outs[0]}
        with torch.inference_mode():
            return self.batch_fn(images.to(self.device))
