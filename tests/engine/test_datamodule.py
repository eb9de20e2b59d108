"""Workers must not repeat each other's augmentations (albumentations keeps its own RNG)."""

from __future__ import annotations

import albumentations as A
import numpy as np
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
    loader = DataLoader(_CvThreadsProbe(), batch_size=1, num_workers=1, worker_init_fn=seed_worker)
    assert [int(v) for v in loader] == [1, 1]
    assert cv2.getNumThreads() == before  # the main process keeps its pool (cache fill, TTA)


def test_auto_workers_leave_a_core_for_the_main_process(monkeypatch):
    import os

    for cores, expected in [(1, 0), (2, 1), (16, 15), (64, 16)]:
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert resolve_workers("auto") == expected
    assert resolve_workers(3) == 3
