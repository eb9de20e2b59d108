"""Model factory: an SMP encoder and decoder plus named heads."""

from podium.models.factory import PodiumModel, build_model
from podium.models.heads import HEADS, HeadSpec

__all__ = ["HEADS", "HeadSpec", "PodiumModel", "build_model"]
