"""LR schedule registry; every schedule scales each param group from its own base LR.

A schedule's `min_lr` is the final LR of the group that uses the optimizer's base `lr`; every
other group ends at the same fraction of its own LR, so encoder/decoder ratios hold throughout.
Step-interval schedules count optimizer steps: `steps_per_epoch` must be optimizer steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau, StepLR

from podium.optim.optimizers import check_options
from podium.registry import Registry

__all__ = [
    "SCHEDULES",
    "RunShape",
    "build_scheduler",
    "cosine_factor",
    "flat_cosine_factor",
    "min_lr_ratio",
    "warmup_cosine_factor",
]

SCHEDULES: Registry = Registry("schedule")

Interval = Literal["step", "epoch"]
Built = tuple[LRScheduler | ReduceLROnPlateau, Interval]


@dataclass(frozen=True)
class RunShape:
    """What every schedule may need to know about the run."""

    epochs: int
    steps_per_epoch: int
    monitor_mode: Literal["min", "max"]

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def min_lr_ratio(optimizer: Optimizer, min_lr: float) -> float:
    """min_lr as a fraction of the optimizer's base lr (its `defaults["lr"]`)."""
    base = float(optimizer.defaults["lr"])
    if not 0.0 <= min_lr <= base:
        raise ValueError(f"min_lr must lie in [0, lr={base}], got {min_lr}")
    return min_lr / base if base > 0 else 1.0


def cosine_factor(progress: float, min_ratio: float) -> float:
    """Half-cosine from 1 (progress 0) to exactly min_ratio (progress >= 1)."""
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear ramp to the peak at step `warmup_steps`, then cosine to min_ratio at the last step."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)  # starts above 0: no wasted first step
    span = total_steps - 1 - warmup_steps
    return cosine_factor((step - warmup_steps) / span if span > 0 else 1.0, min_ratio)


def flat_cosine_factor(step: int, flat_steps: int, anneal_steps: int, min_ratio: float) -> float:
    """1 for flat_steps steps, then cosine reaching exactly min_ratio on the last anneal step."""
    if step < flat_steps or anneal_steps <= 0:
        return 1.0
    return cosine_factor((step - flat_steps + 1) / anneal_steps, min_ratio)


def _constant_factor(step: int) -> float:
    """Always 1 (a named function keeps the scheduler picklable)."""
    return 1.0


@SCHEDULES.register("constant")
def _constant(optimizer: Optimizer, shape: RunShape) -> Built:
    """Every group keeps its base LR."""
    return LambdaLR(optimizer, _constant_factor), "epoch"


@SCHEDULES.register("step")
def _step(optimizer: Optimizer, shape: RunShape, *, step_size: int, gamma: float = 0.1) -> Built:
    """Multiply every LR by gamma each step_size epochs."""
    return StepLR(optimizer, step_size=step_size, gamma=gamma), "epoch"


@SCHEDULES.register("one_cycle")
def _one_cycle(
    optimizer: Optimizer,
    shape: RunShape,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    three_phase: bool = False,
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Built:
    """torch OneCycleLR peaking at each group's own LR, stepped per optimizer step."""
    return (
        OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=shape.total_steps,
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            anneal_strategy=anneal_strategy,
            three_phase=three_phase,
            cycle_momentum=cycle_momentum,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
        ),
        "step",
    )


@SCHEDULES.register("cosine")
def _cosine(
    optimizer: Optimizer,
    shape: RunShape,
    *,
    warmup_epochs: float = 0.0,
    warmup_steps: int | None = None,
    min_lr: float = 0.0,
) -> Built:
    """Linear warmup then cosine to min_lr on the last step, stepped per optimizer step."""
    if warmup_steps is not None and warmup_epochs:
        raise ValueError("cosine: give warmup_epochs or warmup_steps, not both")
    by_epochs = round(warmup_epochs * shape.steps_per_epoch)
    warmup = warmup_steps if warmup_steps is not None else by_epochs
    if not 0 <= warmup < shape.total_steps:
        raise ValueError(f"cosine: warmup ({warmup} steps) must be shorter than the run")
    factor = partial(
        warmup_cosine_factor,
        warmup_steps=warmup,
        total_steps=shape.total_steps,
        min_ratio=min_lr_ratio(optimizer, min_lr),
    )
    return LambdaLR(optimizer, factor), "step"


@SCHEDULES.register("flat_cosine")
def _flat_cosine(
    optimizer: Optimizer,
    shape: RunShape,
    *,
    flat_epochs: int,
    anneal_epochs: int | None = None,
    min_lr: float = 0.0,
) -> Built:
    """Each group's LR for flat_epochs, then a per-step cosine to min_lr over anneal_epochs."""
    anneal = shape.epochs - flat_epochs if anneal_epochs is None else anneal_epochs
    if anneal <= 0:
        raise ValueError(
            f"flat_cosine: nothing to anneal (flat_epochs={flat_epochs}, "
            f"epochs={shape.epochs}, anneal_epochs={anneal_epochs})"
        )
    factor = partial(
        flat_cosine_factor,
        flat_steps=flat_epochs * shape.steps_per_epoch,
        anneal_steps=anneal * shape.steps_per_epoch,
        min_ratio=min_lr_ratio(optimizer, min_lr),
    )
    return LambdaLR(optimizer, factor), "step"


@SCHEDULES.register("plateau")
def _plateau(
    optimizer: Optimizer,
    shape: RunShape,
    *,
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: Literal["rel", "abs"] = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    eps: float = 1e-8,
) -> Built:
    """ReduceLROnPlateau on the monitored metric, checked once per epoch."""
    ratio = min_lr_ratio(optimizer, min_lr)
    scheduler = ReduceLROnPlateau(
        optimizer,
        mode=shape.monitor_mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=[group["lr"] * ratio for group in optimizer.param_groups],
        eps=eps,
    )
    return scheduler, "epoch"


def build_scheduler(
    optimizer: Optimizer,
    name: str,
    epochs: int,
    steps_per_epoch: int,
    monitor: str,
    monitor_mode: Literal["min", "max"],
    **kwargs: Any,
) -> dict[str, Any]:
    """A Lightning lr-scheduler config: {"scheduler", "interval", "frequency", "monitor"}."""
    builder = SCHEDULES.get(name)
    check_options(builder, kwargs, f"schedule {name!r}", taken={"optimizer", "shape"})
    if monitor_mode not in ("min", "max"):
        raise ValueError(f"monitor_mode must be 'min' or 'max', got {monitor_mode!r}")
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(f"epochs, steps_per_epoch must be >= 1, got {epochs}, {steps_per_epoch}")
    shape = RunShape(epochs, steps_per_epoch, monitor_mode)
    scheduler, interval = builder(optimizer, shape, **kwargs)
    return {"scheduler": scheduler, "interval": interval, "frequency": 1, "monitor": monitor}
