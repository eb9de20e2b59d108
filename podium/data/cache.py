"""`data.cache: ram`: decode every image (and mask) once, before training, and keep it in RAM.

Decoding JPEG/PNG is the largest share of the CPU data path, and without a cache it is repeated
every epoch. The cache is filled in the main process before the DataLoaders start, by a thread
pool (OpenCV and PIL release the GIL while they decode), into one flat uint8 buffer per kind.
Workers forked afterwards (Linux's default start method) share those pages copy-on-write: with
all pixels in one array instead of one array per image, reference counting in a worker touches
a few object headers, never the pixel pages. (With the 'spawn' start method every worker would
get its own pickled copy.)

The size is computed from the image headers before anything is decoded; a cache larger than
the limit is refused before any work. Reads return copies, so an augmentation that writes into
its input can never change the cache (copying an image costs a small fraction of decoding it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from podium.data.errors import DataError
from podium.data.images import check_mask_size, read_image
from podium.data.tiling import image_sizes

__all__ = ["CacheTooLargeError", "DecodedCache", "PackedArrays", "fill_ram_caches"]

GB = 1e9


class CacheTooLargeError(ValueError):
    """The decoded images would need more memory than `data.cache_max_gb` allows."""


class PackedArrays:
    """N uint8 arrays of known shapes in one flat buffer; item i is a slice of it."""

    def __init__(self, shapes: Sequence[tuple[int, ...]], ndim: int) -> None:
        self.shapes = np.array(shapes, dtype=np.int64).reshape(-1, ndim)
        self.offsets = np.concatenate([[0], np.cumsum(self.shapes.prod(axis=1))]).astype(np.int64)
        # np.empty only reserves address space: pages are committed as the fill writes them.
        self.buffer = np.empty(int(self.offsets[-1]), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.shapes)

    def put(self, index: int, array: np.ndarray, path: Path) -> None:
        shape = tuple(int(s) for s in self.shapes[index])
        if array.dtype != np.uint8 or array.shape != shape:
            raise DataError(
                f"data.cache: {path} decodes to {array.dtype} {array.shape}, but its header "
                f"promised uint8 {shape}; set data.cache: none for this dataset"
            )
        self.buffer[self.offsets[index] : self.offsets[index + 1]] = array.reshape(-1)

    def get(self, index: int) -> np.ndarray:
        """A writable copy of item `index` (the buffer itself is never handed out)."""
        flat = self.buffer[self.offsets[index] : self.offsets[index + 1]]
        return flat.reshape(tuple(int(s) for s in self.shapes[index])).copy()


@dataclass(frozen=True)
class _Job:
    """One distinct file (pair) to decode: a row of the shared store."""

    image: Path
    mask: Path | None
    read_mask: Callable[[Path], np.ndarray] | None
    channels: int


@dataclass(frozen=True)
class _Store:
    images: PackedArrays  # rows × (H, W, C)
    masks: PackedArrays  # rows × (H, W); 0×0 where the row has no mask
    has_mask: np.ndarray  # rows, bool


@dataclass(frozen=True)
class DecodedCache:
    """One dataset's view of the shared store: its sample i is store row rows[i]."""

    store: _Store
    rows: np.ndarray

    def image(self, index: int) -> np.ndarray:
        """H×W×C uint8 (a copy)."""
        return self.store.images.get(int(self.rows[index]))

    def mask(self, index: int) -> np.ndarray | None:
        """H×W uint8 class ids (a copy), or None when the sample has no mask."""
        row = int(self.rows[index])
        return self.store.masks.get(row) if self.store.has_mask[row] else None


def _leaves(dataset: Dataset) -> list[Dataset]:
    if isinstance(dataset, ConcatDataset):  # e.g. labelled + pseudo-labelled
        return [leaf for part in dataset.datasets for leaf in _leaves(part)]
    return [dataset]


def _pairs(dataset: Dataset) -> list[tuple[Path, Path | None]]:
    """(image, mask or None) per sample, in the dataset's sample order (its `cache_files`)."""
    files = getattr(dataset, "cache_files", None)
    if files is None:
        raise TypeError(f"data.cache: ram cannot cache a {type(dataset).__name__}")
    return files()


def _plan(leaves: list[Dataset]) -> tuple[list[_Job], list[np.ndarray]]:
    """Distinct files across all datasets (a folder used by two splits is decoded once)."""
    jobs: list[_Job] = []
    seen: dict[tuple[Path, Path | None, int], int] = {}
    rows_per_leaf = []
    for leaf in leaves:
        rows = []
        for image, mask in _pairs(leaf):
            key = (image, mask, leaf.channels)
            if key not in seen:
                seen[key] = len(jobs)
                reader = getattr(leaf, "read_mask", None) if mask is not None else None
                jobs.append(_Job(image, mask, reader, leaf.channels))
            rows.append(seen[key])
        rows_per_leaf.append(np.array(rows, dtype=np.int64))
    return jobs, rows_per_leaf


def _allocate(jobs: list[_Job], max_gb: float) -> _Store:
    """Sizes from the headers (nothing decoded yet); refuse a cache past the limit."""
    sizes = image_sizes([job.image for job in jobs])
    has_mask = np.array([job.mask is not None for job in jobs], dtype=bool)
    image_bytes = sum(h * w * job.channels for (h, w), job in zip(sizes, jobs))
    mask_bytes = sum(h * w for (h, w), flag in zip(sizes, has_mask) if flag)
    needed = (image_bytes + mask_bytes) / GB
    if needed > max_gb:
        raise CacheTooLargeError(
            f"data.cache: ram needs {needed:.3g} GB for {len(jobs)} decoded images"
            f"{' and masks' if has_mask.any() else ''}, more than data.cache_max_gb = "
            f"{max_gb:g}; raise data.cache_max_gb (this machine has {_ram_gb():.0f} GB) or set "
            "data.cache: none"
        )
    mask_shapes = [size if flag else (0, 0) for size, flag in zip(sizes, has_mask)]
    images = PackedArrays([(h, w, job.channels) for (h, w), job in zip(sizes, jobs)], ndim=3)
    return _Store(images, PackedArrays(mask_shapes, ndim=2), has_mask)


def _ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):  # not every platform reports it
        return float("nan")


def _decode(store: _Store, jobs: list[_Job], row: int) -> None:
    job = jobs[row]
    image = read_image(job.image, job.channels)
    store.images.put(row, image, job.image)
    if job.mask is None or job.read_mask is None:
        return
    mask = check_mask_size(job.read_mask(job.mask), image, job.mask, job.image)
    if mask.dtype != np.uint8:
        raise DataError(
            f"data.cache: ram keeps masks as uint8, but mask {job.mask} holds class ids past "
            "255; set data.cache: none"
        )
    store.masks.put(row, mask, job.mask)


def _decode_all(store: _Store, jobs: list[_Job], threads: int) -> None:
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        decoded = pool.map(lambda row: _decode(store, jobs, row), range(len(jobs)))
        for _ in tqdm(decoded, total=len(jobs), desc="data.cache: decoding", unit="img"):
            pass
    finally:
        # A bad file stops the fill at once instead of after every queued decode.
        pool.shutdown(wait=True, cancel_futures=True)


def fill_ram_caches(
    datasets: Sequence[Dataset], max_gb: float, threads: int | None = None
) -> float:
    """Decode every distinct image/mask of `datasets` once; attach a cache to each; → GB used.

    Each dataset (or each part of a ConcatDataset) names its files with `cache_files()` and
    gets `.cache`, a DecodedCache that its __getitem__ reads instead of the files.
    """
    leaves = [leaf for dataset in datasets for leaf in _leaves(dataset)]
    jobs, rows_per_leaf = _plan(leaves)
    store = _allocate(jobs, max_gb)
    _decode_all(store, jobs, threads or min(32, os.cpu_count() or 1))
    for leaf, rows in zip(leaves, rows_per_leaf):
        leaf.cache = DecodedCache(store, rows)
    return (store.images.buffer.nbytes + store.masks.buffer.nbytes) / GB
