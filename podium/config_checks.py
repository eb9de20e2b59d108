"""Checks run while the config validates: names against registries and libraries."""

from __future__ import annotations

import difflib
import inspect
import warnings
from typing import Any

from podium.registry import Registry

__all__ = [
    "check_albumentations",
    "check_arch",
    "check_encoder",
    "check_kwargs_fit",
    "check_registered",
    "near",
]


def near(name: str, choices: list[str]) -> str:
    """' Did you mean ...?' for close matches, else ''."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def check_registered(registry: Registry, name: str) -> str:
    if name not in registry:
        raise ValueError(
            f"unknown {registry.family} {name!r}.{near(name, registry.names())} "
            f"Valid: {', '.join(registry.names())}"
        )
    return name


def check_kwargs_fit(
    registry: Registry, name: str, kwargs: dict[str, Any], skip_first: bool
) -> None:
    """Raise if kwargs do not fit the builder's signature (unknown or missing arguments)."""
    check_registered(registry, name)
    signature = inspect.signature(registry.get(name))
    params = list(signature.parameters.values())[1 if skip_first else 0 :]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params]
    required = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    missing = [name for name in required if name not in kwargs]
    if missing:
        raise ValueError(f"{registry.family} {name!r} needs {', '.join(map(repr, missing))}")
    for key in kwargs:
        if key not in accepted:
            raise ValueError(
                f"{registry.family} {name!r} has no argument {key!r}.{near(key, accepted)} "
                f"Accepted: {', '.join(accepted) or 'none'}"
            )


def check_arch(name: str) -> str:
    import segmentation_models_pytorch as smp

    archs = {cls.__name__: cls for cls in smp._MODEL_ARCHITECTURES}  # noqa: SLF001
    if name not in archs:
        raise ValueError(
            f"unknown SMP architecture {name!r}.{near(name, list(archs))} "
            f"Valid: {', '.join(sorted(archs))}"
        )
    return name


def check_encoder(name: str) -> str:
    import segmentation_models_pytorch as smp

    if name.startswith("tu-"):
        import timm

        timm_name = name[3:]
        if not timm.is_model(timm_name):
            known = timm.list_models()
            raise ValueError(
                f"unknown timm model {timm_name!r} in {name!r}.{near(timm_name, known)}"
            )
        return name
    names = smp.encoders.get_encoder_names()
    if name not in names:
        raise ValueError(
            f"unknown SMP encoder {name!r}.{near(name, names)} "
            "Use 'tu-<timm name>' for any timm model."
        )
    return name


def check_albumentations(spec: Any) -> Any:
    """Build the pipeline once so that bad names or arguments fail at load, not mid-epoch."""
    if spec is None:
        return None
    from podium.data.transforms import build_transform

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_transform(spec)
    for warning in caught:
        text = str(warning.message)
        if "not valid for transform" in text:
            raise ValueError(f"albumentations: {text}")
    return spec
