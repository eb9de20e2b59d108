"""Pydantic models of the experiment YAML: load, apply `--set` overrides, validate once.

Every model forbids unknown keys. Free-form blocks (loss terms, optimizer, schedule,
SMP constructor arguments) are checked against the signature of what they construct,
so a typo fails at load with the key path, the value and the accepted names.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from podium.config.checks import check_albumentations, check_arch, check_encoder
from podium.config.data import (
    AeroscapesData,
    DataBase,
    DataConfig,
    FolderData,
    FoldsConfig,
    PseudoLabels,
    RleCsvData,
    SplitDirs,
    TrainTilesConfig,
)
from podium.config.errors import ConfigError, format_validation_error
from podium.heads import HEADS, LossTerm
from podium.registry import Registry, check_kwargs_fit, check_registered
from podium.strict import Named, Strict

__all__ = [
    "AeroscapesData",
    "AugmentationConfig",
    "DataBase",
    "FolderData",
    "FoldsConfig",
    "PseudoLabels",
    "RleCsvData",
    "SplitDirs",
    "TrainTilesConfig",
    "DeviceOp",
    "Config",
    "ConfigError",
    "DataConfig",
    "HeadConfig",
    "CALLBACK_SCHEDULES",
    "InferenceConfig",
    "InitConfig",
    "LossTerm",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainerConfig",
    "apply_overrides",
    "load_config",
]

# Schedules that decide from validation results (revert to best, stop) run as callbacks.
CALLBACK_SCHEDULES: Registry = Registry("schedule")


@CALLBACK_SCHEDULES.register("flat_cosine_revert")
def _flat_cosine_revert(
    patience: int,
    max_flat_epochs: int,
    anneal_epochs: int,
    min_lr: float = 0.0,
    min_delta: float = 0.0,
):
    """Seed 000: flat until `patience` epochs without improvement, revert to best, cosine."""
    from podium.engine.flat_cosine import FlatThenCosineWithRevert

    return lambda monitor, mode: FlatThenCosineWithRevert(
        patience, max_flat_epochs, anneal_epochs, min_lr, monitor, mode, min_delta
    )


# --- model and heads --------------------------------------------------------------------------


class ModelConfig(Strict):
    arch: str = Field("Unet", description="Any segmentation_models_pytorch architecture.")
    encoder_name: str = Field("resnet34", description="SMP encoder, or timm as 'tu-<name>'.")
    encoder_weights: str | None = Field(
        None, description="null (random init), a hub name like 'imagenet', or a local file."
    )
    in_channels: int = Field(3, ge=1, description="Input channels (1 reads images as grey).")
    grayscale_source: Literal["r", "g", "b", "sum", "mean"] | None = Field(
        None,
        description="in_channels 1: build with 3 (so weights load), then make the first conv "
        "take 1 channel from the R, G or B kernel or their sum/mean (seed 001).",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra SMP constructor arguments (decoder_channels...)."
    )
    inputs: dict[str, int] = Field(
        default_factory=dict,
        description="Extra inputs besides the image, name → values per image (e.g. {gsd: 1}); "
        "the data provides them, heads that list them under `inputs` read them.",
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _scalar_inputs(cls, value: Any) -> Any:
        """`gsd: scalar` is short for `gsd: 1`."""
        if isinstance(value, dict):
            return {k: 1 if v == "scalar" else v for k, v in value.items()}
        return value

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, int]) -> dict[str, int]:
        for name, size in value.items():
            if name == "image" or size < 1:
                raise ValueError(
                    f"model.inputs.{name}: use a name other than 'image' and ≥ 1 value"
                )
        return value

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        return check_arch(value)

    @field_validator("encoder_name")
    @classmethod
    def _encoder(cls, value: str) -> str:
        return check_encoder(value)


def _head_kind(value: Any) -> str:
    """The discriminator of a head: its `kind`, `mask` when the YAML leaves it out."""
    if isinstance(value, dict):
        return value.get("kind", "mask")
    return getattr(value, "kind", "mask")


# One member per registered kind: a key of another kind is a validation error naming it.
HeadConfig = Annotated[
    Union[tuple(Annotated[HEADS.get(kind), Tag(kind)] for kind in HEADS.names())],  # noqa: UP007
    Discriminator(_head_kind),
]


# --- training ---------------------------------------------------------------------------------


class OptimizerConfig(Named):
    name: str = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)


class ScheduleConfig(Named):
    name: str = "constant"


class InitConfig(Strict):
    """Start from a previous run (seed 004's chained versions) and choose what trains."""

    weights: Path | None = Field(
        None, description="Checkpoint (or state dict) of a previous run to start from."
    )
    optimizer_state: bool = Field(
        False, description="Also restore that checkpoint's optimizer state (seed 004 v9)."
    )
    strict: bool = Field(False, description="Fail if any weight does not match the model.")
    freeze_encoder: bool = Field(False, description="Train decoder and heads only.")
    unfreeze_last_stages: int = Field(
        0, ge=0, description="With freeze_encoder: train the deepest N encoder stages too."
    )


class DeviceOp(Named):
    """One `augmentation.device` entry: an op name plus its keyword arguments."""


class AugmentationConfig(Strict):
    train: Any = Field(None, description="albumentations dict (A.to_dict form) or a list.")
    val: Any = Field(None, description="Same, for validation; usually null.")
    device: list[DeviceOp] = Field(
        default_factory=list,
        description="Ops run on the training batch on the device after the workers' train "
        "pipeline, per sample: hflip, vflip, rot90, transpose, d4 (image and masks alike), "
        "brightness_contrast, gaussian_noise (image, 0..255 before normalization); a name or "
        "{name: ..., p: ...}. Seeded by seed, epoch and batch index.",
    )

    @field_validator("train", "val")
    @classmethod
    def _albu(cls, value: Any) -> Any:
        return check_albumentations(value)

    @field_validator("device", mode="before")
    @classmethod
    def _device_names(cls, value: Any) -> Any:
        """`- hflip` is short for `- {name: hflip}`."""
        if isinstance(value, list):
            return [{"name": op} if isinstance(op, str) else op for op in value]
        return value

    @field_validator("device")
    @classmethod
    def _device_ops(cls, ops: list[DeviceOp]) -> list[DeviceOp]:
        if ops:
            from podium.engine.device_augment import build_device_ops

            build_device_ops([(op.name, op.kwargs) for op in ops])
        return ops

    @model_validator(mode="after")
    def _device_ops_fit_crops(self):
        """rot90/transpose/d4 turn H×W into W×H: refuse a non-square train crop at load.

        train_tiles are square; sizes known only at run time are checked on every batch.
        """
        if self.device:
            from podium.data.transforms import build_transform, possible_output_sizes
            from podium.engine.device_augment import build_device_ops, check_square_crops

            ops = build_device_ops([(op.name, op.kwargs) for op in self.device])
            check_square_crops(ops, possible_output_sizes(build_transform(self.train)))
        return self


class TrainerConfig(Strict):
    max_epochs: int = Field(10, ge=1)
    accelerator: str = Field("auto", description="auto, cpu, gpu, ...")
    devices: int | str = "auto"
    precision: str = Field(
        "auto", description="auto: bf16-mixed where supported, 16-mixed on other GPUs, 32 on CPU."
    )
    deterministic: bool = Field(False, description="torch deterministic algorithms.")
    monitor: str = Field("val/loss", description="Metric for best checkpoint and early stop.")
    monitor_mode: Literal["min", "max"] = "min"
    save_top_k: int = Field(1, ge=0)
    early_stopping_patience: int | None = Field(None, ge=1)
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = Field(1, ge=1)
    log_every_n_steps: int = Field(10, ge=1)
    limit_train_batches: float | int = 1.0
    limit_val_batches: float | int = 1.0
    channels_last: bool | Literal["auto"] = Field("auto", description="auto: on for CUDA.")
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the model; auto: on for CUDA, off on CPU."
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = Field(
        "default",
        description="torch.compile mode: reduce-overhead adds CUDA graphs (fewer kernel launches "
        "for small batches; fixed shapes), max-autotune also benchmarks kernels (slow start).",
    )
    progress_bar: bool = True
    nonfinite_max_skips: int = Field(
        0,
        ge=0,
        description="Non-finite loss: 0 stops naming step, files and last checkpoint; "
        "N skips up to N such steps.",
    )


class InferenceConfig(Strict):
    batch_size: int = Field(8, ge=1, description="Images (or tile windows) per forward.")
    tta: Literal["none", "hflip", "vflip", "d2", "d4"] = Field(
        "none", description="Test-time augmentation; all variants go in one batched forward."
    )
    scales: list[float] = Field([1.0], description="Multi-scale TTA factors, e.g. [0.75, 1, 1.25].")
    max_batch: int | None = Field(None, ge=1, description="Split TTA batches past this many rows.")
    tile: int | None = Field(
        None, ge=32, description="Sliding-window side for images larger than this (null: whole)."
    )
    overlap: float = Field(0.25, ge=0, lt=1, description="Window overlap fraction.")
    blend: Literal["gaussian", "linear", "constant"] = Field(
        "gaussian", description="Window blending weights."
    )
    postprocess: Path | None = Field(
        None, description="YAML of thresholds / min areas (written by `podium tune`)."
    )
    overlay_alpha: float = Field(0.5, ge=0, le=1, description="Overlay opacity.")
    grid_k: int = Field(4, ge=1, description="Best-k and worst-k images shown by evaluate.")


class Config(Strict):
    experiment: str = Field("experiment", description="Run folder name under output_dir.")
    seed: int = Field(42, description="Seeds Python, NumPy, torch and the workers.")
    output_dir: Path = Field(Path("runs"), description="Runs go to output_dir/experiment/<time>.")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    heads: dict[str, HeadConfig]
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    init: InitConfig = Field(default_factory=InitConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)

    @model_validator(mode="after")
    def _bind_heads(self):
        """Each head learns its name and checks what it reads against the others."""
        if not self.heads:
            raise ValueError("at least one head is needed, e.g. heads: {mask: {classes: 3}}")
        for name, head in self.heads.items():
            head.bind(name, self.heads, self.model.inputs)  # errors name heads.<name>
        # Formats with per-pixel targets (folder's data.targets) say how many values each has.
        for name, head in self.heads.items():
            source = (getattr(self.data, "targets", None) or {}).get(head.target_key)
            if source is not None and source.channels != head.out_channels:
                raise ValueError(
                    f"heads.{name} predicts {head.out_channels} value(s) per pixel but "
                    f"data.targets.{head.target_key}.channels is {source.channels}"
                )
        return self

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, value: OptimizerConfig) -> OptimizerConfig:
        from podium.optim import OPTIMIZERS

        check_registered(OPTIMIZERS, value.name)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: ScheduleConfig) -> ScheduleConfig:
        from podium.optim import SCHEDULES

        if value.name in CALLBACK_SCHEDULES:
            check_kwargs_fit(CALLBACK_SCHEDULES, value.name, value.kwargs, skip_first=False)
        elif value.name not in SCHEDULES:
            names = SCHEDULES.names() + CALLBACK_SCHEDULES.names()
            raise ValueError(f"unknown schedule {value.name!r}. Valid: {', '.join(names)}")
        return value

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` strings; values are parsed as YAML scalars/lists (never eval)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        node: Any = raw
        for key in keys[:-1]:
            node = _child(node, key, path)
        last = keys[-1]
        value = yaml.safe_load(text) if text.strip() else None
        if isinstance(node, list):
            node[_index(last, path)] = value
        else:
            node[last] = value
    return raw


def _child(node: Any, key: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_index(key, path)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {path}: {key!r} is inside a value that is not a mapping")
    return node.setdefault(key, {})


def _index(key: str, path: str) -> int:
    if not key.lstrip("-").isdigit():
        raise ConfigError(f"--set {path}: {key!r} indexes a list, use a number")
    return int(key)


def load_config(
    path: Path | str | None = None,
    overrides: list[str] | None = None,
    raw: dict[str, Any] | None = None,
) -> Config:
    """Read YAML (or take `raw`), apply overrides, validate; raise ConfigError on any problem."""
    source = str(path) if path is not None else "<dict>"
    if raw is None:
        raw = _read_yaml(Path(path))
    # A copy: the caller's dict must not change under it (overrides write into the tree).
    raw = apply_overrides(copy.deepcopy(raw), list(overrides or []))
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, Config)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return raw
