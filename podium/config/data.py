"""The `data` section of the experiment YAML: the union of every registered data format.

Each format (podium/data/formats/) owns its config model; `format:` picks one. A new format
module joins the union from FORMATS without an edit here.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from podium.data.formats import (
    FORMATS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AeroscapesData,
    DataBase,
    DenseTargetConfig,
    FolderData,
    FoldsConfig,
    PseudoLabels,
    RleCsvData,
    SplitDirs,
    TrainTilesConfig,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AeroscapesData",
    "DataBase",
    "DataConfig",
    "DenseTargetConfig",
    "FolderData",
    "FoldsConfig",
    "PseudoLabels",
    "RleCsvData",
    "SplitDirs",
    "TrainTilesConfig",
    "format_models",
]


def format_models() -> list[type[DataBase]]:
    """The config model of every registered format, by name; its `format` must be that name."""
    models = []
    for name in FORMATS.names():
        model = FORMATS.get(name)
        if model.model_fields["format"].annotation != Literal[name]:
            raise TypeError(
                f"data format {name!r}: {model.__name__}.format must be Literal[{name!r}]"
            )
        models.append(model)
    return models


# Union[...] of a runtime tuple: the discriminated union pydantic validates `data` with.
DataConfig = Annotated[Union[tuple(format_models())], Field(discriminator="format")]  # noqa: UP007
