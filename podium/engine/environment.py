"""What a run ran on: versions and devices, saved beside its results."""

from __future__ import annotations

import logging
import os
import platform
import sys
import warnings
from importlib import metadata

import torch

__all__ = ["describe_environment", "quiet_lightning", "resolve_precision"]

_PACKAGES = (
    "podium",
    "torch",
    "torchvision",
    "lightning",
    "segmentation-models-pytorch",
    "timm",
    "albumentations",
    "torchmetrics",
    "pytorch-optimizer",
    "pydantic",
    "numpy",
    "opencv-python-headless",
)


def describe_environment() -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cuda": torch.version.cuda if cuda else None,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_count": os.cpu_count(),
    }


def resolve_precision(precision: str, accelerator: str) -> str:
    """auto: bf16-mixed on GPUs that support it, 16-mixed on older GPUs, 32 on CPU."""
    if precision != "auto":
        return precision
    if accelerator == "cpu" or not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


# Lightning's rank-zero notices ("GPU available: ...", "💡 Tip: ... litlogger",
# "`Trainer(limit_train_batches=1.0)` was configured ...") say nothing a podium user can act
# on; its warnings still show. (Seeding is called with verbose=False.)
_NOTICE_LOGGERS = ("lightning.pytorch.utilities.rank_zero",)


def quiet_lightning() -> None:
    """Hide Lightning's informational notices (warnings and errors still show)."""
    for name in _NOTICE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 calls a torch pytree API that torch itself deprecated: not the user's to fix.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
