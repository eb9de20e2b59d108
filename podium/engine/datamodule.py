"""One DataModule: train/val datasets in, tuned DataLoaders out."""

from __future__ import annotations

import os

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["PodiumDataModule", "resolve_workers"]


def resolve_workers(num_workers: int | str) -> int:
    """auto → cores - 1, capped at 8 (the main process needs a core too)."""
    if num_workers == "auto":
        return max(0, min(8, (os.cpu_count() or 1) - 1))
    return int(num_workers)


class PodiumDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: Dataset | None,
        val: Dataset | None,
        batch_size: int,
        val_batch_size: int | None = None,
        num_workers: int | str = "auto",
    ) -> None:
        super().__init__()
        self.train_set = train
        self.val_set = val
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = resolve_workers(num_workers)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=4 if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, shuffle=False)
