"""The Sample: one image and its label files on disk (what every data format lists).

Its own module, below the formats, so datasets, checks and stats can use it without importing
the formats that build on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """One image and its labels on disk.

    mask: the class-id label map (yielded under the mask head's target key); targets: further
    per-image target files by batch key (dense maps); inputs: extra model inputs by name.
    """

    name: str
    image: Path
    mask: Path | None = None
    # hash=False: a dict cannot be hashed; samples stay usable as set members and dict keys.
    targets: Mapping[str, Path] = field(default_factory=dict, hash=False)
    inputs: Mapping[str, tuple[float, ...]] = field(default_factory=dict, hash=False)
