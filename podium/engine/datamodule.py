"""One DataModule: train/val datasets in, tuned DataLoaders out.

Training items are drawn as (index, seed) keys (podium.data.sample_keys): the default sampler
shuffles by (seed, epoch) and every item's augmentation is seeded by its place in the epoch, so
persistent workers, their number and a kill/resume change nothing in what a run trains on.
"""

from __future__ import annotations

import os
import random

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from podium.data.sample_keys import SeededShuffleSampler

__all__ = ["PodiumDataModule", "resolve_workers", "seed_worker"]


def resolve_workers(num_workers: int | str) -> int:
    """auto → cores - 1, capped at 16 (the main process needs a core too)."""
    if num_workers == "auto":
        return max(0, min(16, (os.cpu_count() or 1) - 1))
    return int(num_workers)


def seed_worker(worker_id: int) -> None:
    """Lightning's per-worker seeding, albumentations' own generators, one OpenCV thread.

    albumentations 2.x keeps private RNGs in each Compose, copied into every worker as they
    are, so without this all workers would apply the same augmentations in lockstep. podium's
    training samplers reseed the transform per item anyway (podium.data.sample_keys); this
    covers datasets read by plain indices (a random validation transform, a custom sampler).

    The workers already use every core, one process each; OpenCV's own pool would add up to
    `cores` threads per worker (15 × 16 on the H100 box), which then fight over the cores the
    main process needs to launch GPU work. torch already sets its own threads to 1 in workers.
    """
    cv2.setNumThreads(0)  # 0: run OpenCV functions sequentially (no pool) in this process
    pl_worker_init_function(worker_id)
    info = get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if transform is not None and hasattr(transform, "set_random_state"):
        seed = torch.initial_seed() % 2**32
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


class PodiumDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: Dataset | None,
        val: Dataset | None,
        batch_size: int,
        val_batch_size: int | None = None,
        num_workers: int | str = "auto",
        sampler: Sampler | None = None,
        batch_sampler: Sampler | None = None,
        seed: int = 0,
    ) -> None:
        """sampler / batch_sampler: None trains on a SeededShuffleSampler of `seed`."""
        super().__init__()
        self.train_set = train
        self.val_set = val
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = resolve_workers(num_workers)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.seed = seed
        self._resume_epoch = 0  # from a checkpoint's state_dict

    @property
    def seeded_keys(self) -> bool:
        """Whether training items come as (index, seed) keys, which reseed the augmentation."""
        chosen = self.batch_sampler if self.batch_sampler is not None else self.sampler
        return chosen is None or bool(getattr(chosen, "seeded_keys", False))

    def _generator(self) -> torch.Generator:
        """Each DataLoader iterator draws its workers' base seed from this, not the torch RNG.

        With persistent workers an uninterrupted run creates its iterator once, a resumed one
        again at its first epoch: drawn from the global RNG, that extra draw would shift every
        later random op (dropout) of the resumed run.
        """
        return torch.Generator().manual_seed(self.seed)

    def _loader(
        self, dataset: Dataset, batch_size: int, shuffle: bool, sampler: Sampler | None = None
    ) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=shuffle and len(dataset) > batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=4 if workers > 0 else None,
            worker_init_fn=seed_worker if workers > 0 else None,
            generator=self._generator(),
        )

    def train_dataloader(self) -> DataLoader:
        if self.batch_sampler is not None:
            self._start_epoch(self.batch_sampler)
            return self._batch_loader(self.train_set, self.batch_sampler)
        sampler = self.sampler
        if sampler is None:
            sampler = SeededShuffleSampler(len(self.train_set), self.seed)
        self._start_epoch(sampler)
        return self._loader(self.train_set, self.batch_size, shuffle=True, sampler=sampler)

    def _start_epoch(self, sampler: Sampler) -> None:
        """Set the epoch the fit loop is about to run on the sampler, before any iterator exists.

        Lightning 2.x creates the first epoch's DataLoader iterator before it calls `set_epoch`
        (in `setup_data`, or earlier when `configure_optimizers` asks for
        `estimated_stepping_batches`, before the loop's progress is even restored), and workers
        prefetch from the sampler as soon as the iterator exists. A fresh run starts at epoch 0
        anyway; a resumed one starts at the epoch its checkpoint recorded (`state_dict`).
        """
        loop = getattr(getattr(self, "trainer", None), "fit_loop", None)
        epoch = self._resume_epoch
        if loop is not None:
            epoch = max(epoch, loop.epoch_progress.current.processed)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        """In every checkpoint: the epoch a resume starts at (what Lightning's set_epoch gets)."""
        loop = getattr(getattr(self, "trainer", None), "fit_loop", None)
        return {"epoch": loop.epoch_progress.current.processed if loop is not None else 0}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        # Lightning restores this before configure_optimizers, so before any train loader.
        self._resume_epoch = int(state_dict.get("epoch", 0))

    def _batch_loader(self, dataset: Dataset, batch_sampler) -> DataLoader:
        """A batch sampler (pseudo-label mix) decides whole batches; shard it across ranks."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            batch_sampler.num_replicas, batch_sampler.rank = trainer.world_size, trainer.global_rank
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            worker_init_fn=seed_worker if workers > 0 else None,
            generator=self._generator(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, shuffle=False)
