"""Image-level targets for class heads, read off the batch's mask on the device."""

from __future__ import annotations

import torch

__all__ = ["presence_from_mask"]


def presence_from_mask(mask: torch.Tensor, mask_classes: int, out_classes: int) -> torch.Tensor:
    """Which classes each image holds, as B×out_classes float {0, 1}.

    mask: B×C×H×W multi-label {0, 1} (C = mask_classes), or B×H×W class ids (multi-class).
    Values outside the classes (an ignore index such as 255) count for no class.
    out_classes == mask_classes: one column per class; out_classes == 1: the image holds any
    class (multi-class: any class but background 0), i.e. Severstal's "has defect".
    """
    if mask.dim() == 4:  # multi-label channels
        per_class = (mask == 1).flatten(2).any(-1)
    else:
        # Every out-of-range id lands in one spare column, dropped after the scatter.
        ids = mask.flatten(1).long().clamp(0, mask_classes)
        ids = torch.where(mask.flatten(1) < 0, mask_classes, ids)
        seen = torch.zeros(mask.shape[0], mask_classes + 1, dtype=torch.bool, device=mask.device)
        per_class = seen.scatter_(1, ids, True)[:, :mask_classes]
        if out_classes == 1:
            per_class = per_class[:, 1:]  # background present says nothing about defects
    if out_classes == 1:
        per_class = per_class.any(1, keepdim=True)
    elif per_class.shape[1] != out_classes:
        raise ValueError(
            f"a class head with {out_classes} outputs cannot learn the presence of "
            f"{mask_classes} mask classes: use {mask_classes} or 1"
        )
    return per_class.float()
