"""Ensembles: average probabilities across models, or average one run's top-k weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from podium.engine.module import PodiumModule
from podium.heads import HeadBase
from podium.inference.forward import Inputs, predict_probabilities

__all__ = [
    "EnsemblePredictor",
    "average_checkpoints",
    "check_compatible_heads",
]


def _head_signature(head: HeadBase) -> tuple[str, int, str]:
    return head.kind, head.out_channels, str(getattr(head, "activation", "none"))


def check_compatible_heads(modules: Sequence[PodiumModule]) -> dict[str, HeadBase]:
    """Heads of the first module; ValueError unless every module has the same names/kinds."""
    if not modules:
        raise ValueError("an ensemble needs at least one module")
    first = modules[0].heads
    for i, module in enumerate(modules[1:], start=1):
        _check_member(i, module.heads, first)
    return first


def _check_member(index: int, specs: dict[str, HeadBase], first: dict[str, HeadBase]) -> None:
    if set(specs) != set(first):
        raise ValueError(
            f"ensemble member {index} has heads {sorted(specs)}, member 0 has {sorted(first)}"
        )
    for name, spec in specs.items():
        mine, theirs = _head_signature(spec), _head_signature(first[name])
        if mine != theirs:
            raise ValueError(
                f"ensemble member {index}, head {name!r}: (kind, channels, activation) "
                f"{mine} differs from member 0's {theirs}"
            )


def _normalized_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"ensemble has {count} modules but {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"ensemble weights must be ≥ 0 with a positive sum, got {list(weights)}")
    return [w / sum(weights) for w in weights]


class EnsemblePredictor:
    """Weighted mean of members' probabilities; callable as a PredictFn (uint8 B×C×H×W).

    Members may differ in architecture but must share head names, kinds, classes and
    activations. Vector heads are renormalized, boxes re-sorted, after averaging.
    """

    def __init__(
        self, modules: Sequence[PodiumModule], weights: Sequence[float] | None = None
    ) -> None:
        self.heads = check_compatible_heads(modules)
        self.modules = list(modules)
        self.weights = _normalized_weights(weights, len(self.modules))

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, inputs: Inputs = None) -> dict[str, torch.Tensor]:
        """uint8 B×C×H×W (+ extra inputs) → {head: weighted mean probabilities} on images'
        device."""
        total: dict[str, torch.Tensor] = {}
        # One member at a time: only one member's outputs are alive besides the sum.
        for module, weight in zip(self.modules, self.weights):
            for name, probs in predict_probabilities(module, images, inputs).items():
                part = probs.to(images.device, torch.float32) * weight
                total[name] = total[name] + part if name in total else part
        return {name: self.heads[name].finalize(x) for name, x in total.items()}


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A Lightning checkpoint's state_dict (or a bare state dict) on the CPU."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", checkpoint)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path} holds no state_dict of tensors")
    return state


def _check_same_layout(
    first: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path, ref: Path
) -> None:
    if set(state) != set(first):
        extra, missing = sorted(set(state) - set(first)), sorted(set(first) - set(state))
        raise ValueError(
            f"checkpoint {path} has different keys than {ref}: "
            f"extra {extra[:5]}, missing {missing[:5]}"
        )
    for key, value in state.items():
        if value.shape != first[key].shape:
            raise ValueError(
                f"checkpoint {path}, key {key!r}: shape {tuple(value.shape)} "
                f"≠ {tuple(first[key].shape)} in {ref}"
            )


def average_checkpoints(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Mean of float tensors over checkpoints; integer buffers kept from the first."""
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint path")
    first = _read_state(paths[0])
    # Sum in float64 so that averaging k checkpoints loses no precision before the cast back.
    sums = {k: v.double() for k, v in first.items() if v.is_floating_point()}
    for path in paths[1:]:
        state = _read_state(path)  # one extra checkpoint in memory at a time
        _check_same_layout(first, state, path, paths[0])
        for key in sums:
            sums[key] += state[key].double()
    return {
        k: (sums[k] / len(paths)).to(v.dtype) if k in sums else v.clone() for k, v in first.items()
    }
