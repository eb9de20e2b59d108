"""The registry of on-disk data formats: one entry per module of podium/data/formats/."""

from __future__ import annotations

from podium.registry import Registry

__all__ = ["FORMATS"]

# name → the format's config model (a DataBase subclass whose methods read that layout).
FORMATS: Registry = Registry("data format")
