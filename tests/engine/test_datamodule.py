"""Workers must not repeat each other's augmentations (albumentations keeps its own RNG)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from podium.engine.datamodule import resolve_workers, seed_worker


class _FlipProbe(Dataset):
    """Item i is 1 if the flip fired, else 0."""

    transform = A.Compose([A.HorizontalFlip(p=0.5)])

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> int:
        row = np.arange(2, dtype=np.uint8)[None]
        return int(self.transform(image=row)["image"][0, 0])


def _draws(worker_init_fn) -> list[int]:
    loader = DataLoader(_FlipProbe(), batch_size=1, num_workers=2, worker_init_fn=worker_init_fn)
    return [int(v) for v in loader]


def test_without_reseeding_workers_run_in_lockstep():
    draws = _draws(None)  # documents the library behaviour our fix is for
    assert draws[0::2] == draws[1::2]


def test_seed_worker_decorrelates_workers():
    draws = _draws(seed_worker)
    assert draws[0::2] != draws[1::2]
    assert 10 < sum(draws) < 54  # still a fair coin


class _CvThreadsProbe(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        import cv2

        return cv2.getNumThreads()


def test_seed_worker_runs_opencv_single_threaded_in_workers_only():
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(4)  # a pool the forked worker would inherit, whatever this machine has
    try:
        loader = DataLoader(
            _CvThreadsProbe(), batch_size=1, num_workers=1, worker_init_fn=seed_worker
        )
        assert [int(v) for v in loader] == [1, 1]
        assert cv2.getNumThreads() == 4  # the main process keeps its pool (cache fill, TTA)
    finally:
        cv2.setNumThreads(before)


def test_auto_workers_leave_a_core_for_the_main_process(monkeypatch):
    import os

    for cores, expected in [(1, 0), (2, 1), (16, 15), (64, 16)]:
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert resolve_workers("auto") == expected
    assert resolve_workers(3) == 3


# --- training augmentation as a function of (seed, epoch, position) ----------------------------

_RANDOM_TRAIN = [
    {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    {"__class_fullname__": "RandomCrop", "height": 48, "width": 48, "p": 1.0},
    {"__class_fullname__": "ColorJitter", "p": 0.8},
]


def _datamodule(tiny_config: dict, workers: int = 0, seed: int = 3):
    import copy

    from podium.build import build_datamodule
    from podium.config import load_config

    raw = copy.deepcopy(tiny_config)
    raw["seed"], raw["data"]["num_workers"] = seed, workers
    raw["augmentation"]["train"] = _RANDOM_TRAIN
    return build_datamodule(load_config(raw=raw))


def _two_epochs(tiny_config: dict, workers: int, seed: int = 3) -> list[list[tuple]]:
    """Both epochs' batches from one loader, as Lightning drives it (set_epoch, then iterate)."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    loader = _datamodule(tiny_config, workers, seed).train_dataloader()
    assert loader.persistent_workers == (workers > 0)  # epoch 1 reuses epoch 0's workers
    epochs = []
    for epoch in range(2):
        _set_sampler_epoch(loader, epoch)
        epochs.append([(b["name"], b["image"], b["mask"]) for b in loader])
    return epochs


def _same_batches(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0] and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2]) for x, y in zip(a, b)
    )


def _by_name(batches: list[tuple]) -> dict[str, torch.Tensor]:
    return {n: image for names, images, _ in batches for n, image in zip(names, images)}


def test_augmented_batches_repeat_with_0_1_or_2_persistent_workers(tiny_config):
    reference = _two_epochs(tiny_config, workers=0)
    for workers in (1, 2):
        run = _two_epochs(tiny_config, workers)
        assert all(_same_batches(a, b) for a, b in zip(run, reference)), workers
    # Each epoch draws new augmentations for the same images, and another seed others.
    first, second = _by_name(reference[0]), _by_name(reference[1])
    common = first.keys() & second.keys()
    assert len(common) >= 4
    assert all(not torch.equal(first[n], second[n]) for n in common)
    other = _by_name(_two_epochs(tiny_config, workers=0, seed=4)[0])
    common = first.keys() & other.keys()
    assert common and all(not torch.equal(first[n], other[n]) for n in common)


def test_loaders_leave_the_global_torch_rng_alone(tiny_config):
    # With persistent workers a resumed run creates its iterators once more than the
    # uninterrupted one: drawn from the global RNG, that would shift its dropout masks.
    datamodule = _datamodule(tiny_config)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    list(datamodule.train_dataloader())
    list(datamodule.val_dataloader())
    assert torch.equal(torch.get_rng_state(), before)


def test_rng_state_skips_an_augmentation_reseeded_by_keys(tiny_config):
    from types import SimpleNamespace

    from torch.utils.data import SequentialSampler

    from podium.engine.datamodule import PodiumDataModule
    from podium.engine.rng_state import RngState

    keyed = _datamodule(tiny_config)
    plain = PodiumDataModule(
        keyed.train_set, keyed.val_set, 4, num_workers=0, sampler=SequentialSampler(range(12))
    )
    assert keyed.seeded_keys and not plain.seeded_keys
    states = []
    for datamodule in (keyed, plain):
        callback = RngState()
        callback.setup(SimpleNamespace(datamodule=datamodule), None, "fit")
        states.append(callback.state_dict()["transform"])
    assert states[0] is None  # nothing to restore: each item reseeds it
    assert states[1]  # plain indices: the transform's own generators still need saving


def test_a_resumed_loader_starts_at_the_checkpoint_epoch(tiny_config):
    # Lightning creates the first iterator (and workers prefetch) before it calls set_epoch,
    # so the epoch a resume starts at travels in the datamodule's checkpoint state.
    from podium.data.sample_keys import SeededShuffleSampler

    datamodule = _datamodule(tiny_config)
    assert datamodule.state_dict() == {"epoch": 0}  # no trainer: a fresh start
    datamodule.load_state_dict({"epoch": 3})
    loader = datamodule.train_dataloader()
    assert loader.sampler.epoch == 3
    expected = SeededShuffleSampler(12, seed=3)
    expected.set_epoch(3)
    assert list(loader.sampler) == list(expected)
