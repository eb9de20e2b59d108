"""`vector`: directions per image as unit (x, y) vectors (e.g. a flow angle θ as (cos, sin)).

x runs along the image width, y down its height (podium.geometry); under flips and rotations
the vector turns with the image, and TTA/ensembles renormalize the averaged vector.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from podium.geometry import D4, normalize_vectors, transform_vectors
from podium.heads.pooled import PooledHead
from podium.heads.registry import HEADS

__all__ = ["VectorHead"]


@HEADS.register("vector")
class VectorHead(PooledHead):
    """Targets: B×2k float32 (x, y) pairs; outputs are unit length."""

    kind: Literal["vector"] = "vector"
    vectors: int = Field(1, ge=1, description="Directions per image (outputs 2 per vector).")

    default_loss: ClassVar[tuple[str, ...]] = ("cosine",)
    default_metrics: ClassVar[tuple[str, ...]] = ("cosine_similarity",)
    example: ClassVar[dict[str, Any]] = {"vectors": 1}

    @property
    def out_channels(self) -> int:
        return 2 * self.vectors

    def build_module(self, shapes):
        return _UnitOutput(super().build_module(shapes))

    def metric_update_args(self, output, target, valid):
        """(B·k)×2 pairs: each vector is one sample of the cosine similarity."""
        return output.detach().float().reshape(-1, 2), target.float().reshape(-1, 2)

    def random_target(self, batch, size, generator):
        shape = (batch, self.out_channels)
        return {self.target_key: normalize_vectors(torch.randn(shape, generator=generator))}

    def augment(self, output: torch.Tensor, t: D4) -> torch.Tensor:
        return transform_vectors(output, t)

    def deaugment(self, output: torch.Tensor, t: D4) -> torch.Tensor:
        return transform_vectors(output, t, inverse=True)

    def finalize(self, merged: torch.Tensor) -> torch.Tensor:
        return normalize_vectors(merged)


class _UnitOutput(torch.nn.Module):
    """The pooled MLP's (x, y) pairs scaled to unit length."""

    def __init__(self, mlp: torch.nn.Module) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, ctx) -> torch.Tensor:
        return normalize_vectors(self.mlp(ctx))
