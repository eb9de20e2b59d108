"""Base classes of every config model (config/, heads/, data/formats/): strict key sets,
and named builder blocks. The lowest layer, so any package may define its own YAML keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Named", "Strict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Named(BaseModel):
    """A `name` plus keyword arguments passed unrenamed to the named builder."""

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
