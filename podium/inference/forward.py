"""Forward passes at inference: pad to the encoder stride, autocast, crop back."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from podium.engine.module import PodiumModule
from podium.heads import HeadBase

__all__ = [
    "Inputs",
    "PredictFn",
    "head_probabilities",
    "predict_padded",
    "predict_probabilities",
    "rows",
]

# Extra model inputs besides the image, name → B×n (rows match the images'); None: none.
Inputs = Mapping[str, torch.Tensor] | None
# (uint8 B×C×H×W, inputs) → {head: probabilities}; what TTA, tiles and ensembles take and give.
PredictFn = Callable[[torch.Tensor, Inputs], dict[str, torch.Tensor]]


def rows(inputs: Inputs, index: slice | torch.Tensor) -> Inputs:
    """The extra inputs of some rows of the batch (None stays None)."""
    return None if inputs is None else {name: x[index] for name, x in inputs.items()}


@torch.inference_mode()
def predict_padded(
    module: PodiumModule, images: torch.Tensor, inputs: Inputs = None
) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W of any size → head outputs at H×W (spatial heads cropped back)."""
    h, w = images.shape[-2:]
    stride = module.model.output_stride
    pad_h, pad_w = (-h) % stride, (-w) % stride
    if pad_h or pad_w:
        # Reflection keeps border statistics closer to the image than zeros would.
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        images = F.pad(images.float(), (0, pad_w, 0, pad_h), mode=mode).to(torch.uint8)
    use_bf16 = images.device.type == "cuda" and torch.cuda.is_bf16_supported()
    extras = {name: x.to(images.device) for name, x in (inputs or {}).items()}
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        outputs = module({"image": images, **extras})
    return {
        name: (out[..., :h, :w] if out.dim() == 4 else out).float() for name, out in outputs.items()
    }


def head_probabilities(
    heads: Mapping[str, HeadBase], outputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Raw outputs → what inference averages, by each head's own activation."""
    return {name: heads[name].activate(out) for name, out in outputs.items()}


def predict_probabilities(
    module: PodiumModule, images: torch.Tensor, inputs: Inputs = None
) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W (moved to the module's device) → {head: float32 probabilities}."""
    outputs = predict_padded(module, images.to(module.device), inputs)
    return head_probabilities(module.heads, outputs)
