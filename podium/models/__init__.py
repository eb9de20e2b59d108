"""Model factory: an SMP encoder and decoder plus named heads (podium.heads)."""

from podium.models.factory import PodiumModel, build_model

__all__ = ["PodiumModel", "build_model"]
