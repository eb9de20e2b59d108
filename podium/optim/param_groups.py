"""Optimizer parameter groups: one LR per model part, no weight decay on norms and biases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torch import nn

__all__ = ["NORM_TYPES", "build_param_groups", "is_norm_module", "model_parts"]

# Norm layers whose weights act as per-channel gains: decaying them towards 0 only hurts.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def is_norm_module(module: nn.Module) -> bool:
    """Whether a module is a normalization layer (torch types, or any class named *Norm*)."""
    # The name test catches third-party norms (timm's LayerNorm2d, FrozenBatchNorm2d, ...).
    return isinstance(module, NORM_TYPES) or "norm" in type(module).__name__.lower()


def model_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The model's top-level children by name (encoder, decoder, heads for PodiumModel)."""
    return dict(model.named_children())


def _owned_params(module: nn.Module) -> Iterator[tuple[nn.Module, nn.Parameter]]:
    """Every (owning module, parameter) pair under a module, each parameter once."""
    for owner in module.modules():
        for param in owner.parameters(recurse=False):
            yield owner, param


def _part_lrs(
    parts: Mapping[str, nn.Module], lr: float, lr_groups: Mapping[str, float] | None
) -> dict[str, float]:
    """The LR of each part; parts not named in lr_groups use the base lr."""
    lr_groups = dict(lr_groups or {})
    unknown = sorted(set(lr_groups) - set(parts))
    if unknown:
        raise ValueError(
            f"lr_groups names unknown model part(s) {', '.join(unknown)}; "
            f"the model's parts are {', '.join(parts)}"
        )
    return {name: float(lr_groups.get(name, lr)) for name in parts}


def _split_decay(
    owned: Iterable[tuple[nn.Module, nn.Parameter]], seen: set[int], no_decay_norm_bias: bool
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable, not-yet-seen parameters split into (decay, no_decay)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for owner, param in owned:
        if not param.requires_grad or id(param) in seen:
            continue  # frozen, or tied to a parameter already grouped
        seen.add(id(param))
        exempt = no_decay_norm_bias and (param.ndim <= 1 or is_norm_module(owner))
        (no_decay if exempt else decay).append(param)
    return decay, no_decay


def build_param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.0,
    lr_groups: Mapping[str, float] | None = None,
    no_decay_norm_bias: bool = True,
) -> list[dict[str, Any]]:
    """Named optimizer groups: one per part, plus a `<part>_no_decay` twin when decay applies."""
    # Parts are the model's top-level children (encoder, decoder, heads); parameters the model
    # owns itself form part "other". Frozen parameters are left out.
    parts = model_parts(model)
    lrs = {**_part_lrs(parts, lr, lr_groups), "other": float(lr)}
    owned = {name: _owned_params(part) for name, part in parts.items()}
    owned["other"] = ((model, p) for p in model.parameters(recurse=False))
    split = no_decay_norm_bias and weight_decay > 0  # without decay the split changes nothing
    seen: set[int] = set()
    groups: list[dict[str, Any]] = []
    for name, pairs in owned.items():
        decay, no_decay = _split_decay(pairs, seen, split)
        for suffix, params, wd in (("", decay, weight_decay), ("_no_decay", no_decay, 0.0)):
            if params:
                groups.append(
                    {"params": params, "lr": lrs[name], "weight_decay": wd, "name": name + suffix}
                )
    return groups
