"""On-disk data formats: one module per layout, each a DataBase subclass registered in FORMATS.

To add a format, add one module here (and import it below) plus its case in
tests/data/test_format_contract.py: the config union (`data.format`), the docs, `podium check`,
stats, folds and training pick it up from FORMATS.
"""

# Importing the formats fills the registry.
from podium.data.formats import aeroscapes, folder, rle_csv  # noqa: E402,F401,I001
from podium.data.formats.aeroscapes import AeroscapesData, aeroscapes_samples
from podium.data.formats.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataBase,
    DataSpec,
    FoldsConfig,
    Sample,
    TrainTilesConfig,
    list_images,
)
from podium.data.formats.folder import DenseTargetConfig, FolderData, SplitDirs, folder_samples
from podium.data.formats.registry import FORMATS
from podium.data.formats.rle_csv import PseudoLabels, RleCsvData

__all__ = [
    "FORMATS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AeroscapesData",
    "DataBase",
    "DataSpec",
    "DenseTargetConfig",
    "FolderData",
    "FoldsConfig",
    "PseudoLabels",
    "RleCsvData",
    "Sample",
    "SplitDirs",
    "TrainTilesConfig",
    "aeroscapes_samples",
    "folder_samples",
    "list_images",
]
