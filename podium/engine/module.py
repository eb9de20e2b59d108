"""One LightningModule for every task: heads own their loss and metrics."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MetricCollection

from podium.heads import HeadBase
from podium.losses import CombinedLoss
from podium.models import PodiumModel

__all__ = ["HeadTask", "PodiumModule", "normalize_on_device"]


@dataclass
class HeadTask:
    """A head's training contract: the head, its weighted loss and validation metrics."""

    head: HeadBase
    loss: CombinedLoss
    weight: float
    metrics: MetricCollection


def normalize_on_device(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """uint8 B×C×H×W → float, (x/255 - mean)/std; mean/std: C-vectors on the same device."""
    scale = 1.0 / (255.0 * std)
    return images.float().mul_(scale[None, :, None, None]).sub_((mean / std)[None, :, None, None])


class PodiumModule(pl.LightningModule):
    """Task-agnostic training/validation step over a dict of heads."""

    def __init__(
        self,
        model: PodiumModel,
        tasks: dict[str, HeadTask],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        configure_optim: Callable[[PodiumModule], Any],
        config: dict[str, Any],
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str = "default",
        device_augment: Callable[..., tuple[torch.Tensor, dict]] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks
        # Metrics must be registered as children so Lightning moves and resets them.
        self.val_metrics = nn.ModuleDict({name: t.metrics for name, t in tasks.items()})
        self.losses = nn.ModuleDict({name: t.loss for name, t in tasks.items()})
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float), persistent=False)
        self._configure_optim = configure_optim
        self.config = config
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self._compiled: Any = None
        # augmentation.device (podium.engine.device_augment.DeviceAugment), training only.
        self.device_augment = device_augment

    @property
    def heads(self) -> dict[str, HeadBase]:
        return {name: task.head for name, task in self.tasks.items()}

    def forward(self, inputs: dict[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 B×C×H×W image (or {"image": ..., <extra input>: B×n}) → {head: output}."""
        if isinstance(inputs, torch.Tensor):
            inputs = {"image": inputs}
        x = normalize_on_device(inputs["image"], self.mean, self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = {**inputs, "image": x}
        if self._compiled is not None:
            try:
                if self.compile_mode == "reduce-overhead":
                    # CUDA graphs reuse their output memory: the last step's outputs are done.
                    torch.compiler.cudagraph_mark_step_begin()
                return self._compiled(x)
            except Exception as error:  # noqa: BLE001 - any compiler failure: run eagerly
                # A real model error raises again below, in eager mode, with a plain traceback.
                warnings.warn(
                    f"torch.compile failed ({type(error).__name__}: {error}); "
                    "continuing without compilation",
                    stacklevel=2,
                )
                object.__setattr__(self, "_compiled", None)
        return self.model(x)

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.compile and self._compiled is None:
            # Kept outside the module tree so checkpoints hold plain (uncompiled) key names.
            compiled = torch.compile(self.model, mode=self.compile_mode)
            object.__setattr__(self, "_compiled", compiled)

    def _cast_targets(self, batch: dict) -> dict:
        """Targets travel compact (uint8 masks, float16 maps); each head casts its own here.

        Heads that read another head's target (class presence from the mask) run in config
        order, and read it before or after its cast alike.
        """
        for task in self.tasks.values():
            task.head.prepare_target(batch)
        return batch

    @staticmethod
    def model_inputs(batch: dict) -> dict[str, torch.Tensor]:
        """What the model reads from a batch: the image and the extra inputs."""
        return {"image": batch["image"], **batch.get("inputs", {})}

    def _losses(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = torch.zeros((), device=self.device)
        logs: dict[str, torch.Tensor] = {}
        for name, task in self.tasks.items():
            key = task.head.target_key
            if key not in batch:
                raise KeyError(
                    f"head {name!r} learns from batch key {key!r}, which the data does not "
                    f"provide (batch keys: {', '.join(sorted(batch))}); set heads.{name}.target "
                    "or give the data that target (data.targets, masks)"
                )
            head_loss, parts = self.losses[name](
                outputs[name], batch[key], batch.get(f"valid_{key}")
            )
            total = total + task.weight * head_loss
            logs[f"{name}/loss"] = head_loss.detach()
            logs.update({f"{name}/{part}": value.detach() for part, value in parts.items()})
        return total, logs

    def _augment_on_device(self, batch: dict, batch_idx: int) -> dict:
        """augmentation.device on the uint8 batch; every spatial head's target moves with it."""
        keys = [t.head.target_key for t in self.tasks.values() if t.head.spatial]
        keys += [f"valid_{key}" for key in keys]
        spatial = {key: batch[key] for key in keys if key in batch}
        step = (self.current_epoch, batch_idx, self.global_rank)
        images, spatial = self.device_augment(batch["image"], spatial, step)
        return {**batch, "image": images, **spatial}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.device_augment is not None:
            batch = self._augment_on_device(batch, batch_idx)
        batch = self._cast_targets(batch)
        outputs = self(self.model_inputs(batch))
        loss, logs = self._losses(outputs, batch)
        if not torch.isfinite(loss):
            return loss  # NonFiniteGuard stops the run or drops the step; keep it out of the logs
        size = batch["image"].shape[0]
        self.log(
            "train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=size
        )
        self.log_dict(
            {f"train/{k}": v for k, v in logs.items()},
            on_step=False,
            on_epoch=True,
            batch_size=size,
        )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        batch = self._cast_targets(batch)
        outputs = self(self.model_inputs(batch))
        loss, logs = self._losses(outputs, batch)
        size = batch["image"].shape[0]
        self.log("val/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, batch_size=size)
        for name, task in self.tasks.items():
            key = task.head.target_key
            args = task.head.metric_update_args(
                outputs[name], batch[key], batch.get(f"valid_{key}")
            )
            self.val_metrics[name].update(*args)

    def on_validation_epoch_end(self) -> None:
        for name, metrics in self.val_metrics.items():
            values = metrics.compute()
            self.log_dict(
                {f"val/{name}/{k}": v for k, v in _flatten(values).items()}, prog_bar=True
            )
            metrics.reset()

    def configure_optimizers(self) -> Any:
        return self._configure_optim(self)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The resolved config travels with the weights: enough to rebuild the model.
        checkpoint["podium_config"] = self.config


def _flatten(values: dict[str, Any]) -> dict[str, torch.Tensor]:
    """MetricCollection results may nest dicts (per-class metrics); flatten with '_'."""
    flat: dict[str, torch.Tensor] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}" if not k.startswith(key) else k: v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
