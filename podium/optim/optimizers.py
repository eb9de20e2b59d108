"""Optimizer registry and the builder the engine calls from `configure_optimizers`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import torch
from pytorch_optimizer import Lookahead, Ranger
from torch import nn

from podium.optim.param_groups import build_param_groups
from podium.registry import Registry

__all__ = [
    "LOOKAHEAD_DEFAULTS",
    "OPTIMIZERS",
    "build_optimizer",
    "check_options",
    "wrap_lookahead",
]

OPTIMIZERS: Registry = Registry("optimizer")

# Reference Lookahead / Ranger values (Zhang et al. 2019; lessw2020's Ranger); note that
# pytorch_optimizer's Lookahead itself defaults to k=5.
LOOKAHEAD_DEFAULTS: dict[str, Any] = {"k": 6, "alpha": 0.5}

OPTIMIZERS.register("sgd")(torch.optim.SGD)
OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
# torch's RAdam: the maintained reference (foreach, standard state_dict); before the variance
# is tractable it takes bias-corrected momentum-SGD steps, exactly like `ranger` below.
OPTIMIZERS.register("radam")(torch.optim.RAdam)
# pytorch_optimizer 4.1's Ranger defaults degenerated_to_sgd=False, which makes its first
# ~5 steps move *up* the gradient (step size -lr); reference Ranger takes SGD steps there.
# Gradient centralization is off so that `ranger` is RAdam + Lookahead; `use_gc: true` adds it.
_REFERENCE_RANGER = {"betas": (0.95, 0.999), "degenerated_to_sgd": True, "use_gc": False}
OPTIMIZERS.register("ranger")(partial(Ranger, **_REFERENCE_RANGER, **LOOKAHEAD_DEFAULTS))

_BUILDER_ARGS = frozenset({"params", "lr", "weight_decay"})


def check_options(
    factory: Callable[..., Any], options: Mapping[str, Any], what: str, taken: Iterable[str] = ()
) -> None:
    """Raise ValueError naming unknown or missing options (a **kwargs sink accepts nothing)."""
    params = inspect.signature(factory).parameters.values()
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    accepted = sorted({p.name for p in named} - set(taken))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) for {what}: {', '.join(unknown)}. "
            f"Accepted: {', '.join(accepted) or '(none)'}"
        )
    required = {p.name for p in named if p.default is p.empty} - set(taken)
    missing = sorted(required - set(options))
    if missing:
        raise ValueError(f"{what} needs option(s): {', '.join(missing)}")


def _yaml_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """Lists from YAML become tuples (betas=[0.9, 0.999] -> (0.9, 0.999))."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _fused_default(
    factory: Callable[..., Any], groups: list[dict[str, Any]], options: Mapping[str, Any]
) -> dict[str, Any]:
    """Options plus fused=True when the class has a fused kernel and every param is on CUDA."""
    params = [p for g in groups for p in g["params"]]
    supported = "fused" in inspect.signature(factory).parameters
    # An explicit fused/foreach/differentiable choice wins: torch rejects fused with either.
    explicit = any(options.get(k) is not None for k in ("fused", "foreach"))
    chosen = explicit or bool(options.get("differentiable"))
    on_cuda = bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)
    return {**options, "fused": True} if supported and on_cuda and not chosen else dict(options)


def wrap_lookahead(optimizer: torch.optim.Optimizer, options: Mapping[str, Any]) -> Lookahead:
    """Wrap an optimizer with pytorch_optimizer's Lookahead (defaults k=6, alpha=0.5)."""
    check_options(Lookahead, options, "lookahead", taken={"optimizer"})
    return Lookahead(optimizer, **{**LOOKAHEAD_DEFAULTS, **options})


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float = 0.0,
    lr_groups: dict[str, float] | None = None,
    no_decay_norm_bias: bool = True,
    lookahead: dict | bool | None = None,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """The named optimizer over the model's trainable params, grouped per part, maybe Lookahead."""
    factory = OPTIMIZERS.get(name)
    lookahead = {} if lookahead is True else (None if lookahead is False else lookahead)
    options = _yaml_values(kwargs)
    check_options(factory, options, f"optimizer {name!r}", taken=_BUILDER_ARGS)
    if lookahead is not None and name == "ranger":
        raise ValueError("optimizer 'ranger' already includes Lookahead; set its k/alpha instead")
    groups = build_param_groups(model, lr, weight_decay, lr_groups, no_decay_norm_bias)
    if not groups:
        raise ValueError("the model has no trainable parameters (is everything frozen?)")
    options = _fused_default(factory, groups, options)
    optimizer = factory(groups, lr=lr, weight_decay=weight_decay, **options)
    return optimizer if lookahead is None else wrap_lookahead(optimizer, lookahead)
