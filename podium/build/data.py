"""The data half of the build layer: samples, datasets and DataModule from a validated Config.

Nothing below this layer sees the config: the data format (`config.data`, one of
podium.data.formats) receives a DataSpec of the model's and heads' values it needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.config import Config, HeadConfig
from podium.data.formats import DataSpec, Sample
from podium.data.pseudo_sampler import PseudoMix
from podium.data.tiling import TiledDataset
from podium.data.transforms import build_transform
from podium.engine.datamodule import PodiumDataModule
from podium.heads import first_of_kind

__all__ = [
    "PseudoMix",
    "build_datamodule",
    "class_presence",
    "data_spec",
    "dataset_for",
    "mask_head",
    "mask_reader",
    "mask_target_key",
    "split_samples",
]


def mask_head(config: Config) -> HeadConfig | None:
    """The head whose class-id masks the data format reads (None: no mask head)."""
    name = first_of_kind(config.heads, "mask")
    return None if name is None else config.heads[name]


def mask_target_key(config: Config) -> str:
    return mask_head(config).target_key


def data_spec(config: Config) -> DataSpec:
    """What the data format needs from the model and heads sections."""
    head = mask_head(config)
    return DataSpec(
        channels=config.model.in_channels,
        mask_key=mask_target_key(config) if head is not None else None,
        mask_classes=head.classes if head is not None else None,
        inputs=dict(config.model.inputs),
        seed=config.seed,
    )


def split_samples(config: Config, split: str) -> list[Sample]:
    """Samples of 'train' or 'val' (or another split the format has, e.g. 'pseudo')."""
    return config.data.samples(split, data_spec(config))


def mask_reader(config: Config):
    """The strict reader of the data's mask files: path → H×W class ids."""
    return config.data.mask_reader(data_spec(config))


def class_presence(config: Config, samples: list[Sample]) -> np.ndarray:
    """N×C bool class presence of the samples, in their order (folds, class-balanced sampler)."""
    return config.data.presence(samples, data_spec(config))


def dataset_for(
    config: Config,
    split: str,
    samples: list[Sample] | None = None,
    augment: bool | None = None,
    pseudo: list[Sample] | None = None,
) -> Any:
    """The split's dataset; pseudo: the data.pseudo images to mix into training (rle_csv)."""
    augment = split == "train" if augment is None else augment
    spec = config.augmentation.train if augment else config.augmentation.val
    transform = build_transform(spec)
    if transform is not None:
        # albumentations seeds itself from OS entropy unless told: runs would not repeat.
        transform.set_random_seed(config.seed)
    samples = samples if samples is not None else split_samples(config, split)
    train = split == "train" and augment
    return config.data.dataset(samples, data_spec(config), transform, train, pseudo)


def build_datamodule(
    config: Config, samples=None, pseudo: list[Sample] | None = None
) -> PodiumDataModule:
    """samples: optional (train, val) Sample lists, e.g. one fold of a k-fold split.

    pseudo: the data.pseudo images to mix in (e.g. those that passed validation); None: all.
    """
    data = config.data
    train, val = samples if samples is not None else (None, None)
    train_set = dataset_for(config, "train", samples=train, pseudo=pseudo)
    val_set = dataset_for(config, "val", samples=val)
    _fill_ram_cache(config, train_set, val_set)
    return PodiumDataModule(
        train_set,
        val_set,
        batch_size=data.batch_size,
        val_batch_size=data.val_batch_size,
        num_workers=data.num_workers,
        sampler=_train_sampler(config, train_set),
        batch_sampler=_pseudo_batch_sampler(config, train_set),
        seed=config.seed,
    )


def _fill_ram_cache(config: Config, *datasets) -> None:
    """data.cache: ram decodes every file once here, before the loaders fork their workers.

    Only training builds a cache: evaluate/predict read each file once anyway.
    """
    if config.data.cache != "ram":
        return
    from podium.data.cache import fill_ram_caches

    used = fill_ram_caches(datasets, config.data.cache_max_gb)
    print(f"data.cache: ram holds {used:.3g} GB of decoded images and masks")


def _pseudo_batch_sampler(config: Config, train_set):
    """Seed 001's mix: a fixed pseudo-labelled share of every batch, a sampled pool per epoch."""
    if not isinstance(train_set, PseudoMix):
        return None
    from podium.data.pseudo_sampler import PseudoLabelBatchSampler

    pseudo = config.data.pseudo
    return PseudoLabelBatchSampler(
        train_set.n_labelled,
        train_set.n_pseudo,
        config.data.batch_size,
        pseudo.fraction,
        pseudo.sample_rate,
        config.seed,
    )


def _train_sampler(config: Config, train_set):
    """class_balanced: the format's class presence weights images by their rarest class."""
    if isinstance(train_set, PseudoMix) or config.data.sampler != "class_balanced":
        return None
    if isinstance(train_set, TiledDataset):
        raise ValueError("data.sampler: class_balanced works on whole images, not train_tiles")
    from podium.data.samplers import class_balanced_sampler

    # The dataset's own sample order: weight n belongs to item n.
    presence = class_presence(config, train_set.samples)
    return class_balanced_sampler(presence, config.data.sampler_power, config.seed)
