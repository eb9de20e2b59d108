"""Train/validation leakage check: near-duplicate images across splits by 64-bit dHash.

dHash compares neighbouring pixels of a 9×8 grey thumbnail, so it survives re-encoding,
resizing and small colour shifts but not crops or flips; two images count as near-duplicates
when their hashes differ in at most `max_distance` of the 64 bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from podium.data.errors import DataError

__all__ = ["dhash", "hamming_distances", "hash_images", "near_duplicates_across"]

_HASH_SIDE = 8  # 8×8 comparisons = 64 bits
_BIT_WEIGHTS = (np.uint64(1) << np.arange(64, dtype=np.uint64)).reshape(_HASH_SIDE, _HASH_SIDE)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def dhash(grey: np.ndarray) -> np.uint64:
    """H×W (or H×W×C, averaged) image → 64-bit difference hash."""
    grey = grey.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    # INTER_AREA averages whole blocks and float32 avoids rounding ties, so the thumbnail is
    # stable under re-encoding noise.
    thumb = cv2.resize(grey, (_HASH_SIDE + 1, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    bits = thumb[:, 1:] > thumb[:, :-1]
    return np.bitwise_or.reduce(_BIT_WEIGHTS[bits], initial=np.uint64(0))


def hash_images(paths: Mapping[str, Path], progress: bool = False) -> tuple[list[str], np.ndarray]:
    """Name → path to (names, N uint64 hashes), read in grey with OpenCV."""
    names = list(paths)
    hashes = np.zeros(len(names), dtype=np.uint64)
    for i, name in enumerate(tqdm(names, desc="hashing", disable=not progress)):
        grey = cv2.imread(str(paths[name]), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise DataError(f"cannot read image {paths[name]} for the duplicate check")
        hashes[i] = dhash(grey)
    return names, hashes


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """N and M uint64 hashes → N×M uint8 bit distances (popcount of the XORs)."""
    xor = np.bitwise_xor(a[:, None], b[None, :])
    if hasattr(np, "bitwise_count"):  # numpy ≥ 2.0
        return np.bitwise_count(xor).astype(np.uint8)
    # numpy 1.x: count per byte with a lookup table and sum the 8 bytes.
    return _POPCOUNT8[xor.view(np.uint8).reshape(*xor.shape, 8)].sum(axis=-1, dtype=np.uint8)


def near_duplicates_across(
    train: Mapping[str, Path],
    val: Mapping[str, Path],
    max_distance: int = 4,
    chunk: int = 2048,
    progress: bool = False,
) -> list[tuple[str, str, int]]:
    """(train_name, val_name, distance) for pairs within max_distance bits, closest first."""
    train_names, train_hashes = hash_images(train, progress)
    val_names, val_hashes = hash_images(val, progress)
    found: list[tuple[str, str, int]] = []
    # Chunk the train side so the N×M matrix stays at chunk×M bytes.
    for start in range(0, len(train_names), chunk):
        dist = hamming_distances(train_hashes[start : start + chunk], val_hashes)
        for i, j in zip(*np.nonzero(dist <= max_distance)):
            found.append((train_names[start + i], val_names[j], int(dist[i, j])))
    return sorted(found, key=lambda t: (t[2], t[0], t[1]))
