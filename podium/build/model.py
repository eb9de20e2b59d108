"""Model, heads and training module from a validated Config."""

from __future__ import annotations

import functools
from typing import Any

import torch

from podium.config import CALLBACK_SCHEDULES, Config
from podium.engine.module import HeadTask, PodiumModule
from podium.losses import build_loss
from podium.metrics import build_metrics
from podium.models import PodiumModel, build_model
from podium.models.grayscale import build_grayscale_model

__all__ = [
    "apply_init",
    "build_device_augment",
    "build_module",
    "build_podium_model",
    "configure_optimization",
    "schedule_callbacks",
    "use_channels_last",
    "use_compile",
]


def build_podium_model(config: Config) -> PodiumModel:
    m = config.model
    if m.in_channels == 1 and m.grayscale_source is not None:
        return build_grayscale_model(
            m.arch,
            m.encoder_name,
            config.heads,
            m.encoder_weights,
            m.grayscale_source,
            inputs=m.inputs,
            **m.kwargs,
        )
    return build_model(
        m.arch,
        m.encoder_name,
        config.heads,
        m.encoder_weights,
        m.in_channels,
        inputs=m.inputs,
        **m.kwargs,
    )


def _tasks(config: Config) -> dict[str, HeadTask]:
    """Each head's loss and metrics, built from the registries in the contexts it asks for."""
    ignore = config.data.ignore_index
    tasks = {}
    for name, head in config.heads.items():
        terms = [(t.name, t.weight, t.kwargs) for t in head.loss_terms()]
        loss = build_loss(terms, head.loss_context(ignore))
        metrics = build_metrics(head.metric_names(), head.metric_context(ignore))
        tasks[name] = HeadTask(head, loss, head.weight, metrics)
    return tasks


def configure_optimization(module: PodiumModule, config: Config) -> dict[str, Any]:
    """Optimizer + scheduler config for Lightning, from the optim registries."""
    from podium.optim import build_optimizer, build_scheduler, load_optimizer_state

    opt = config.optimizer
    optimizer = build_optimizer(module.model, opt.name, opt.lr, opt.weight_decay, **opt.kwargs)
    if config.init.weights is not None and config.init.optimizer_state:
        load_optimizer_state(optimizer, config.init.weights)
    if config.schedule.name in CALLBACK_SCHEDULES:
        return {"optimizer": optimizer}  # the callback owns the LR
    trainer = module.trainer
    epochs = config.trainer.max_epochs
    steps = max(1, int(trainer.estimated_stepping_batches) // epochs)
    sched = config.schedule
    scheduler = build_scheduler(
        optimizer,
        sched.name,
        epochs=epochs,
        steps_per_epoch=steps,
        monitor=config.trainer.monitor,
        monitor_mode=config.trainer.monitor_mode,
        **sched.kwargs,
    )
    if scheduler is None:
        return {"optimizer": optimizer}
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _on_cuda(config: Config) -> bool:
    return torch.cuda.is_available() and config.trainer.accelerator in ("auto", "gpu", "cuda")


def use_channels_last(config: Config) -> bool:
    setting = config.trainer.channels_last
    return _on_cuda(config) if setting == "auto" else bool(setting)


def use_compile(config: Config) -> bool:
    setting = config.trainer.compile
    return _on_cuda(config) if setting == "auto" else bool(setting)


def apply_init(config: Config, model: PodiumModel) -> None:
    """Previous-run weights, then freezing: what trains is decided before the optimizer."""
    from podium.optim import freeze_encoder, load_weights, unfreeze_last_stages

    init = config.init
    if init.weights is not None:
        report = load_weights(model, init.weights, strict=init.strict)
        print(f"init.weights {init.weights}: {report}")
    if init.freeze_encoder:
        freeze_encoder(model)
        unfreeze_last_stages(model, init.unfreeze_last_stages)


def schedule_callbacks(config: Config) -> list:
    """The LR callback of a callback schedule (flat_cosine_revert), else nothing."""
    sched = config.schedule
    if sched.name not in CALLBACK_SCHEDULES:
        return []
    make = CALLBACK_SCHEDULES.get(sched.name)(**sched.kwargs)
    return [make(config.trainer.monitor, config.trainer.monitor_mode)]


def build_module(config: Config, model: PodiumModel | None = None) -> PodiumModule:
    model = model or build_podium_model(config)
    module = PodiumModule(
        model,
        _tasks(config),
        mean=config.data.mean,
        std=config.data.std,
        configure_optim=functools.partial(configure_optimization, config=config),
        config=config.model_dump(mode="json"),
        channels_last=use_channels_last(config),
        compile=use_compile(config),
        compile_mode=config.trainer.compile_mode,
        device_augment=build_device_augment(config),
    )
    return module


def build_device_augment(config: Config):
    """augmentation.device as a DeviceAugment seeded by the run's seed, or None."""
    ops = config.augmentation.device
    if not ops:
        return None
    from podium.engine.device_augment import DeviceAugment, build_device_ops

    return DeviceAugment(build_device_ops([(op.name, op.kwargs) for op in ops]), config.seed)
