"""Optimizers, parameter groups, LR schedules and encoder freezing, built from YAML options."""

from podium.optim.freeze import (
    LoadReport,
    encoder_stages,
    freeze_encoder,
    load_optimizer_state,
    load_weights,
    set_trainable,
    unfreeze_encoder,
    unfreeze_last_stages,
)
from podium.optim.optimizers import OPTIMIZERS, build_optimizer, wrap_lookahead
from podium.optim.param_groups import build_param_groups
from podium.optim.schedules import SCHEDULES, build_scheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "LoadReport",
    "build_optimizer",
    "build_param_groups",
    "build_scheduler",
    "encoder_stages",
    "freeze_encoder",
    "load_optimizer_state",
    "load_weights",
    "set_trainable",
    "unfreeze_encoder",
    "unfreeze_last_stages",
    "wrap_lookahead",
]
