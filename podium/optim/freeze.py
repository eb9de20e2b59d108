"""Freeze / unfreeze encoder stages and start from a previous run's weights or optimizer state."""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _NormBase

__all__ = [
    "LoadReport",
    "encoder_stages",
    "freeze_encoder",
    "load_optimizer_state",
    "load_weights",
    "model_state_from_checkpoint",
    "read_checkpoint",
    "set_trainable",
    "unfreeze_encoder",
    "unfreeze_last_stages",
]

log = logging.getLogger(__name__)

_FROZEN = "_podium_frozen_norm"
_HOOKED = "_podium_frozen_norm_hook"
_PROBE_SIZE = 256  # probe side: stride-32 maps stay 8x8, so 1x1 outputs mean pooling


def _keep_frozen_norm_in_eval(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Forward pre-hook: a frozen norm layer normalizes with, and never updates, running stats."""
    # Lightning calls model.train() every epoch; this undoes it for frozen norms only.
    if getattr(module, _FROZEN, False) and module.training:
        module.train(False)


def _set_norm_frozen(module: nn.Module, frozen: bool, training: bool) -> None:
    """Freeze (eval, stats fixed) or release (back to `training`) a stat-tracking norm layer."""
    if not isinstance(module, _NormBase):
        return
    if frozen and not getattr(module, _HOOKED, False):
        module.register_forward_pre_hook(_keep_frozen_norm_in_eval)
        setattr(module, _HOOKED, True)
    setattr(module, _FROZEN, frozen)
    module.train(training and not frozen)


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Set requires_grad on a module's parameters and freeze/release its norm statistics."""
    training = module.training
    for p in module.parameters():
        p.requires_grad_(trainable)
    for m in module.modules():
        _set_norm_frozen(m, not trainable, training)


def freeze_encoder(model: nn.Module) -> None:
    """Freeze `model.encoder`: no gradients, BatchNorm running stats fixed (even after .train())."""
    set_trainable(model.encoder, False)


def unfreeze_encoder(model: nn.Module) -> None:
    """Undo freeze_encoder: the whole encoder trains again."""
    set_trainable(model.encoder, True)


def _owns_state(module: nn.Module) -> bool:
    """Whether a module directly owns a parameter or buffer."""
    return any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    )


def _inside(name: str, root: str) -> bool:
    """Whether a dotted module name is `root` or one of its descendants."""
    return name == root or name.startswith(root + ".")


def _stages_from_taps(root: nn.Module, taps: list[str]) -> list[list[str]]:
    """Group state-owning modules by feature tap: a stage runs from one tap to the next."""
    names = [name for name, _ in root.named_modules() if name]
    owners = {name for name, m in root.named_modules() if name and _owns_state(m)}
    stages: list[list[str]] = [[] for _ in taps]
    upcoming = len(taps) - 1  # modules after the last tap (e.g. a head) join the deepest stage
    for name in reversed(names):  # registration order is execution order in timm backbones
        tap = next((i for i, t in enumerate(taps) if _inside(name, t)), None)
        upcoming = upcoming if tap is None else tap
        if name in owners:
            stages[upcoming].append(name)
    return [stage[::-1] for stage in stages if stage]


def _timm_taps(encoder: nn.Module) -> tuple[str, nn.Module, list[str]] | None:
    """(prefix, timm features model, tap module names) for timm-backed encoders (`tu-*`)."""
    for prefix, root in (("model.", getattr(encoder, "model", None)), ("", encoder)):
        info = getattr(root, "feature_info", None)
        if isinstance(root, nn.Module) and hasattr(info, "module_name"):
            # FeatureListNet renames 'stages.0' to 'stages_0'; return_layers has the real names.
            layers = getattr(root, "return_layers", None)
            return prefix, root, list(layers) if layers else list(info.module_name())
    return None


def _first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor in a module output (tensor, or list/tuple of them)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (list, tuple)):
        return next((t for t in output if isinstance(t, torch.Tensor)), None)
    return None


def _output_stride(output: Any) -> int | None:
    """Stride of an output on the probe: NCHW maps or square (B, N, C) token grids, else None."""
    t = _first_tensor(output)
    if t is not None and t.ndim == 4 and t.shape[-2] > 1:  # 1x1 maps are pooled: no resolution
        return round(_PROBE_SIZE / t.shape[-2])
    if t is not None and t.ndim == 3 and math.isqrt(t.shape[1]) ** 2 == t.shape[1] > 1:
        return round(_PROBE_SIZE / math.isqrt(t.shape[1]))
    return None


def _probe(encoder: nn.Module) -> dict[str, int | None]:
    """Output stride of every module a probe forward calls, in the order their calls end."""
    calls: dict[str, int | None] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:  # None: output untouched
            calls.setdefault(name, _output_stride(output))

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in encoder.named_modules() if n]
    modes = {m: m.training for m in encoder.modules()}
    # Meta tensors: shapes only, no compute and no touching the real weights or BN stats.
    state = {n: torch.empty_like(t, device="meta") for n, t in encoder.state_dict().items()}
    conv = next((m for m in encoder.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    probe = torch.empty(1, conv.in_channels if conv else 3, _PROBE_SIZE, _PROBE_SIZE, device="meta")
    try:
        encoder.eval()
        functional_call(encoder, state, (probe,), strict=False)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return calls


def _strictly_under(name: str, root: str) -> bool:
    """Whether a dotted module name is a proper descendant of root ('' is the encoder)."""
    return name.startswith(root + ".") if root else bool(name)


def _outermost(called: Iterable[str], root: str) -> list[str]:
    """Called modules under root with no called ancestor between them and root."""
    called = list(called)
    inner = {n for n in called if _strictly_under(n, root)}
    parents = {n: [".".join(n.split(".")[:i]) for i in range(1, n.count(".") + 1)] for n in inner}
    return [n for n in called if n in inner and not any(a in inner for a in parents[n])]


def _probe_units(calls: Mapping[str, int | None]) -> list[str]:
    """The encoder's outermost called modules; one lone wrapper is looked through."""
    units = _outermost(calls, "")
    while len(units) == 1 and _outermost(calls, units[0]):
        units = _outermost(calls, units[0])
    return units


def _stages_from_probe(encoder: nn.Module) -> list[list[str]]:
    """Group state owners by the output stride of their outermost called ancestor."""
    calls = _probe(encoder)
    unit_stride: dict[str, int] = {}
    current = 1
    for unit in _probe_units(calls):  # units without a resolution inherit the one before
        current = calls[unit] or current
        unit_stride[unit] = current
    by_stride: dict[int, list[str]] = {}
    for name, module in encoder.named_modules():
        unit = next((u for u in unit_stride if _inside(name, u)), None)
        if unit is not None and _owns_state(module):
            by_stride.setdefault(unit_stride[unit], []).append(name)
    return [by_stride[s] for s in sorted(by_stride)]


def _stages_from_children(encoder: nn.Module) -> list[list[str]]:
    """Fallback: each top-level child with state is a stage."""
    stages = []
    for child_name, child in encoder.named_children():
        owners = (n for n, m in child.named_modules() if _owns_state(m))
        stages.append([f"{child_name}.{n}" if n else child_name for n in owners])
    return [s for s in stages if s]


def encoder_stages(encoder: nn.Module) -> list[list[str]]:
    """Names of the encoder's state-owning modules grouped into stages, shallowest first."""
    # timm (`tu-*`): a stage ends at each feature_info tap. Other (SMP) encoders: a stage is every
    # module whose output has the same stride, seen in one probe forward. Else: top-level children.
    timm = _timm_taps(encoder)
    if timm is not None:
        prefix, root, taps = timm
        return [[prefix + n for n in stage] for stage in _stages_from_taps(root, taps)]
    try:
        stages = _stages_from_probe(encoder)
    except Exception as err:  # any forward failure: the probe is only a heuristic
        log.info("stride probe failed (%s); using top-level children as stages", err)
        return _stages_from_children(encoder)
    return stages if len(stages) > 1 else _stages_from_children(encoder)


def unfreeze_last_stages(model: nn.Module, n: int) -> list[str]:
    """Unfreeze the deepest n encoder stages (see encoder_stages); returns the unfrozen modules."""
    if n <= 0:
        return []
    encoder = model.encoder
    stages = encoder_stages(encoder)
    if n >= len(stages):
        set_trainable(encoder, True)  # also covers state owned outside any stage
        return [name for stage in stages for name in stage]
    names = [name for stage in stages[-n:] for name in stage]
    for name in names:
        module = encoder.get_submodule(name)
        for p in module.parameters(recurse=False):
            p.requires_grad_(True)
        _set_norm_frozen(module, False, encoder.training)
    return names


@dataclass(frozen=True)
class LoadReport:
    """Keys that did not load: absent from the file, unknown to the model, or of another shape."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [
            f"{label} ({len(keys)}): {', '.join(keys)}"
            for label, keys in (
                ("missing", self.missing),
                ("unexpected", self.unexpected),
                ("shape mismatch, skipped", self.mismatched),
            )
            if keys
        ]
        return "; ".join(parts) or "all keys matched"


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """torch.load on CPU; arbitrary pickled objects only when trust_pickle is set."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds pickled Python objects besides tensors; if you trust the file, "
            f"pass trust_pickle=True ({err})"
        ) from err


def model_state_from_checkpoint(ckpt: Mapping[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """The model state_dict in a Lightning ckpt (`state_dict`, keys `model.*`) or a plain one."""
    state = ckpt.get("state_dict", ckpt)
    if any(k.startswith(prefix) for k in state):
        # A LightningModule may hold more than the model (loss weights, EMA copies): drop them.
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return {k.replace("_orig_mod.", ""): v for k, v in state.items()}  # torch.compile wrapper


def load_weights(
    model: nn.Module,
    path: str | Path,
    strict: bool = False,
    prefix: str = "model.",
    trust_pickle: bool = False,
) -> LoadReport:
    """Load a previous run's weights; non-strict skips shape mismatches and reports them."""
    state = model_state_from_checkpoint(read_checkpoint(path, trust_pickle), prefix)
    own = model.state_dict()
    mismatched = sorted(
        k
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    )
    if not strict:  # torch raises on shape mismatches even with strict=False
        state = {k: v for k, v in state.items() if k not in mismatched}
    if not set(state) & set(own):
        theirs, ours = next(iter(state), None), next(iter(own), None)
        raise ValueError(
            f"no key of {path} matches the model (keys like {theirs!r} vs {ours!r}); "
            f"wrong file or prefix {prefix!r}?"
        )
    result = model.load_state_dict(state, strict=strict)
    missing = sorted(set(result.missing_keys) - set(mismatched))  # reported as mismatched
    report = LoadReport(missing, sorted(result.unexpected_keys), mismatched)
    if report.missing or report.unexpected or report.mismatched:
        log.warning("load_weights(%s): %s", path, report)
    return report


def _optimizer_state(ckpt: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The optimizer state_dict in a Lightning ckpt (`optimizer_states[index]`) or a plain one."""
    state = ckpt["optimizer_states"][index] if "optimizer_states" in ckpt else ckpt
    plain = {"state", "param_groups"} <= set(state)
    lookahead = {"lookahead_state", "base_optimizer"} <= set(state)
    if not (plain or lookahead):
        raise ValueError(f"no optimizer state found (keys: {', '.join(map(str, state))})")
    return dict(state)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    path: str | Path,
    index: int = 0,
    keep_hyperparams: bool = True,
    trust_pickle: bool = False,
) -> None:
    """Load a previous run's optimizer state (moments, steps, Lookahead slow weights)."""
    # keep_hyperparams: this run's group settings (lr, weight_decay, name) win over the saved
    # ones, so the new YAML's LRs and a freshly built scheduler apply.
    state = _optimizer_state(read_checkpoint(path, trust_pickle), index)
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"the optimizer state in {path} does not fit this optimizer ({err!r}): same optimizer "
            f"(and lookahead), same frozen parts and lr_groups are needed"
        ) from err
    if keep_hyperparams:
        for group, saved in zip(optimizer.param_groups, hyper, strict=True):
            params = group["params"]
            group.clear()  # drop saved keys too: a stale initial_lr would fool a new scheduler
            group.update(saved, params=params)
