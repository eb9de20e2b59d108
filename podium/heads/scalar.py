"""`scalar`: K values per image (a scale, a count), regressed from a pooled map."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from podium.heads.pooled import PooledHead
from podium.heads.registry import HEADS

__all__ = ["ScalarHead"]


@HEADS.register("scalar")
class ScalarHead(PooledHead):
    """Targets: B×K float32; unchanged by flips and rotations (a scale does not turn)."""

    kind: Literal["scalar"] = "scalar"
    channels: int = Field(1, ge=1, description="Values per image.")

    default_loss: ClassVar[tuple[str, ...]] = ("huber",)
    default_metrics: ClassVar[tuple[str, ...]] = ("mae", "rmse")
    example: ClassVar[dict[str, Any]] = {"channels": 1}

    @property
    def out_channels(self) -> int:
        return self.channels
