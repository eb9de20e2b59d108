"""Head kinds: one module per kind, each a HeadBase subclass registered in HEADS.

To add a kind, add one module here (and import it below) plus its contract test entry: the
config union, the model, the engine, TTA, tiles and the writers pick it up from HEADS.
"""

# Importing the kinds fills the registry.
from podium.heads import classification, dense, mask, scalar, vector  # noqa: E402,F401,I001
from podium.heads.base import FeatureShapes, HeadBase, HeadInputs, LossTerm, WriteContext
from podium.heads.classification import ClassHead
from podium.heads.dense import DenseHead
from podium.heads.mask import MaskHead
from podium.heads.scalar import ScalarHead
from podium.heads.vector import VectorHead
from podium.heads.registry import HEADS

__all__ = [
    "HEADS",
    "ClassHead",
    "DenseHead",
    "FeatureShapes",
    "HeadBase",
    "HeadInputs",
    "LossTerm",
    "MaskHead",
    "ScalarHead",
    "VectorHead",
    "WriteContext",
    "first_of_kind",
    "make_head",
]


def make_head(name: str, kind: str, **fields) -> HeadBase:
    """A validated head of `kind` named `name` (outside a config: tests, notebooks)."""
    head = HEADS.get(kind).model_validate({"kind": kind, **fields})
    head._name = name
    return head


def first_of_kind(heads: dict[str, HeadBase], kind: str) -> str | None:
    """Name of the first head of this kind, None when there is none."""
    HEADS.get(kind)  # an unknown kind is an error, not "none found"
    return next((name for name, head in heads.items() if head.kind == kind), None)
