"""Checks run while the config validates: names against registries and libraries."""

from __future__ import annotations

import warnings
from typing import Any

from podium.registry import near

__all__ = ["check_albumentations", "check_arch", "check_encoder"]


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
