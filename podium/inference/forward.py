"""Forward passes at inference: pad to the encoder stride, autocast, crop back."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from podium.engine.module import PodiumModule
from podium.models import HeadSpec

__all__ = [
    "PredictFn",
    "head_probabilities",
    "head_specs",
    "predict_padded",
    "predict_probabilities",
]

# uint8 B×C×H×W → {head: probabilities}; what TTA, tiles and ensembles take and give.
PredictFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@torch.inference_mode()
def predict_padded(module: PodiumModule, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W of any size → head outputs at H×W (spatial heads cropped back)."""
    h, w = images.shape[-2:]
    stride = module.model.output_stride
    pad_h, pad_w = (-h) % stride, (-w) % stride
    if pad_h or pad_w:
        # Reflection keeps border statistics closer to the image than zeros would.
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        images = F.pad(images.float(), (0, pad_w, 0, pad_h), mode=mode).to(torch.uint8)
    use_bf16 = images.device.type == "cuda" and torch.cuda.is_bf16_supported()
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        outputs = module(images)
    return {
        name: (out[..., :h, :w] if out.dim() == 4 else out).float() for name, out in outputs.items()
    }


def head_probabilities(
    module: PodiumModule, outputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Logits → probabilities by each head's activation (softmax over C, or sigmoid)."""
    probs = {}
    for name, task in module.tasks.items():
        out = outputs[name]
        if task.spec.activation == "softmax":
            probs[name] = out.softmax(dim=1)
        elif task.spec.activation == "sigmoid":
            probs[name] = out.sigmoid()
        else:
            probs[name] = out
    return probs


def predict_probabilities(module: PodiumModule, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """uint8 B×C×H×W (moved to the module's device) → {head: float32 probabilities}."""
    return head_probabilities(module, predict_padded(module, images.to(module.device)))


def head_specs(module: PodiumModule) -> dict[str, HeadSpec]:
    """{head name: HeadSpec} of a module, in head order."""
    return {name: task.spec for name, task in module.tasks.items()}
