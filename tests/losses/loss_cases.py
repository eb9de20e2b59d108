"""Shared tiny batches and the table of which head modes each registered loss serves."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from podium.losses import LOSSES, LossContext

__all__ = [
    "C",
    "IGNORE",
    "MASK",
    "MODES_OF",
    "REG",
    "WEIGHTED",
    "batch",
    "build",
    "ctx_for",
    "good_and_bad",
    "mask_cases",
]

C = 3
IGNORE = 255
MASK = ("multiclass", "multilabel")
REG = ("regression",)

# Every registered name must appear here: a new loss without a row fails test_table_is_complete.
MODES_OF: dict[str, tuple[str, ...]] = {
    "ce": ("multiclass",),
    "bce": ("multilabel",),
    "dice": MASK,
    "soft_dice": MASK,
    "jaccard": MASK,
    "tversky": MASK,
    "focal": MASK,
    "lovasz": MASK,
    "huber": REG,
    "smooth_l1": REG,
    "l1": REG,
    "mse": REG,
    "cosine": REG,
}

# Losses taking `class_weights`.
WEIGHTED = ("ce", "bce", "dice", "soft_dice", "jaccard", "tversky", "focal")

# (name, kwargs) variants worth running through the mask tests on top of the defaults.
_VARIANTS: dict[str, list[dict]] = {
    "tversky": [{"alpha": 0.3, "beta": 0.7, "gamma": 0.75}],
    "lovasz": [{"per_image": True}],
    "soft_dice": [{"smooth": 1.0, "log_loss": True}],
    "dice": [{"log_loss": True, "smooth": 1.0}],
    "bce": [{"smooth_factor": 0.1, "pos_weight": 2.0}],
    "ce": [{"label_smoothing": 0.1}],
    "focal": [{"alpha": 0.25, "gamma": 1.0}],
}


def mask_cases() -> list[tuple[str, str, dict]]:
    """(name, mode, kwargs) for every mask loss, mode it serves, and interesting kwargs."""
    cases = []
    for name, modes in MODES_OF.items():
        for mode in modes:
            if mode == "regression":
                continue
            for kwargs in [{}, *_VARIANTS.get(name, [])]:
                cases.append((name, mode, kwargs))
    return cases


def ctx_for(mode: str, ignore_index: int | None = IGNORE) -> LossContext:
    """Context for a C-class (or C-channel) head."""
    return LossContext(
        mode, num_classes=C if mode != "regression" else 2, ignore_index=ignore_index
    )


def build(name: str, mode: str, ignore_index: int | None = IGNORE, **kwargs) -> torch.nn.Module:
    return LOSSES.get(name)(ctx_for(mode, ignore_index), **kwargs)


def batch(
    mode: str, seed: int = 0, b: int = 2, h: int = 6, w: int = 6, vector: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pred B×C×H×W, target, valid) with some ignored and some invalid pixels.

    multiclass: target B×H×W ids with IGNORE on row 0, valid B×H×W False on column 0.
    multilabel: target B×C×H×W {0, 1}, valid B×H×W False on column 0.
    regression: pred/target B×2×H×W (or B×2 when vector), valid B×1×H×W (or B×1).
    Every class appears among the kept pixels so that no overlap term is trivially zero.
    """
    g = torch.Generator().manual_seed(seed)
    if mode == "regression":
        shape = (b, 2) if vector else (b, 2, h, w)
        target = torch.randn(shape, generator=g)
        pred = torch.randn(shape, generator=g)
        valid = torch.rand((b, 1, *shape[2:]), generator=g) > 0.3
        return pred, target, valid
    pred = torch.randn(b, C, h, w, generator=g) * 2
    valid = torch.ones(b, h, w, dtype=torch.bool)
    valid[:, :, 0] = False
    if mode == "multiclass":
        target = torch.randint(0, C, (b, h, w), generator=g)
        target[:, 1, 1 : 1 + C] = torch.arange(C)  # every class present among kept pixels
        target[:, 0] = IGNORE
        return pred, target, valid
    target = (torch.rand(b, C, h, w, generator=g) > 0.5).float()
    target[:, :, 1, 1], target[:, :, 1, 2] = 1.0, 0.0  # both labels present in every channel
    return pred, target, valid


def good_and_bad(mode: str, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A confident right prediction and a confident wrong one for `target`."""
    if mode == "regression":
        return target + 0.01, -target
    if mode == "multiclass":
        ids = target.clamp(0, C - 1)
        good = F.one_hot(ids, C).movedim(-1, 1).float() * 8 - 4
        return good, good.roll(1, dims=1)
    good = target * 8 - 4
    return good, -good
