"""The data half of the build layer: samples, datasets and DataModule from a validated Config.

Nothing below this layer sees the config; it receives typed values.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from podium.config import (
    AeroscapesData,
    Config,
    FolderData,
    HeadConfig,
    RleCsvData,
)
from podium.data.dataset import SegmentationDataset
from podium.data.formats import Sample, aeroscapes_samples, folder_samples
from podium.data.images import read_mask
from podium.data.sample_keys import KeyedConcatDataset
from podium.data.transforms import build_transform
from podium.engine.datamodule import PodiumDataModule

__all__ = [
    "PseudoMix",
    "build_datamodule",
    "dataset_for",
    "mask_head",
    "mask_reader",
    "mask_target_key",
    "rle_dataset",
    "rle_presence",
    "rle_split_ids",
    "split_samples",
]


def split_samples(config: Config, split: str) -> list[Sample]:
    """Samples of 'train' or 'val' for the configured layout."""
    data = config.data
    if isinstance(data, FolderData):
        dirs = data.train if split == "train" else data.val
        return folder_samples(dirs.images, dirs.masks)
    if isinstance(data, AeroscapesData):
        return aeroscapes_samples(data.root, data.train_list if split == "train" else data.val_list)
    if isinstance(data, RleCsvData):
        return _rle_samples(config, split)
    raise TypeError(f"unsupported data format {type(data).__name__}")


def _rle_samples(config: Config, split: str) -> list[Sample]:
    """The split's image files as mask-less Samples: their masks are rows of the CSV."""
    ids = rle_split_ids(config)[0 if split == "train" else 1]
    return [Sample(Path(image_id).stem, Path(config.data.images) / image_id) for image_id in ids]


def mask_reader(config: Config):
    data = config.data
    head = mask_head(config)
    palette = data.palette if data.mask_encoding == "palette" else None
    if data.mask_encoding == "palette" and palette is None:
        raise ValueError("data.mask_encoding is 'palette' but data.palette is not set")
    classes = head.classes if head is not None else len(data.classes)
    return functools.partial(
        read_mask,
        num_classes=classes,
        ignore_index=data.ignore_index,
        palette=palette,
        ignore_color=data.ignore_color,
    )


def mask_head(config: Config) -> HeadConfig | None:
    return next((h for h in config.heads.values() if h.kind == "mask"), None)


def mask_target_key(config: Config) -> str:
    name, head = next((n, h) for n, h in config.heads.items() if h.kind == "mask")
    return head.target or name


def _attach_donors(transform, samples: list[Sample], config: Config) -> None:
    """CopyPaste built from YAML needs the training images it pastes from."""
    from podium.data.copy_paste import CopyPaste, DonorPool

    if transform is None:
        return
    pastes = [t for t in _walk(transform) if isinstance(t, CopyPaste)]
    if pastes:
        pool = DonorPool(samples, mask_reader(config), config.model.in_channels)
        for paste in pastes:
            paste.set_donors(pool)


def _walk(transform):
    yield transform
    for child in getattr(transform, "transforms", []):
        yield from _walk(child)


def rle_split_ids(config: Config) -> tuple[list[str], list[str]]:
    """Seeded random train/val split of the image folder (seed 001: 20 % validation)."""
    from podium.data.formats import list_images

    names = sorted(path.name for path in list_images(config.data.images).values())
    order = np.random.default_rng(config.seed).permutation(len(names))
    n_val = max(1, int(round(len(names) * config.data.val_fraction)))
    val = sorted(names[i] for i in order[:n_val])
    return sorted(set(names) - set(val)), val


def rle_dataset(config: Config, samples: list[Sample], transform=None):
    """The labelled RleCsvDataset over these samples' image files (no pseudo-labels)."""
    from podium.data.rle_dataset import RleCsvDataset

    return RleCsvDataset(
        config.data.images,
        config.data.csv,
        mask_head(config).classes,
        config.model.in_channels,
        transform,
        mask_target_key(config),
        # The CSV keys images by file name; a Sample's name is only the stem.
        image_ids=[s.image.name for s in samples],
    )


def rle_presence(config: Config, samples: list[Sample]) -> np.ndarray:
    """N×C bool class presence of rle_csv samples, in their order, from the CSV (no decoding)."""
    dataset = rle_dataset(config, samples)
    row = {image_id: n for n, image_id in enumerate(dataset.ids)}
    return dataset.presence()[[row[s.image.name] for s in samples]]


def _rle_dataset(
    config: Config, split: str, transform, samples: list[Sample], pseudo: list[Sample] | None
):
    """The split's RleCsvDataset; the train split mixes in data.pseudo when set.

    pseudo: the pseudo-labelled images to use (e.g. those that passed validation); None: every
    image data.pseudo.csv names.
    """
    data, head = config.data, mask_head(config)
    labelled = rle_dataset(config, samples, transform)
    if split != "train" or data.pseudo is None:
        return labelled
    from podium.data.rle_csv import read_rle_csv
    from podium.data.rle_dataset import RleCsvDataset

    # Parsed once: the ids choose the samples and the same labels feed the dataset.
    labels = read_rle_csv(data.pseudo.csv, num_classes=head.classes)
    pseudo_set = RleCsvDataset(
        data.pseudo.images,
        labels,
        head.classes,
        config.model.in_channels,
        transform,
        mask_target_key(config),
        image_ids=sorted(labels) if pseudo is None else [s.image.name for s in pseudo],
    )
    return PseudoMix(labelled, pseudo_set)


class PseudoMix(KeyedConcatDataset):
    """Labelled then pseudo-labelled items; the batch sampler fixes their mix per batch.

    Its (index, seed) keys reach the part holding the item (podium.data.sample_keys).
    """

    def __init__(self, labelled, pseudo) -> None:
        super().__init__([labelled, pseudo])
        self.n_labelled, self.n_pseudo = len(labelled), len(pseudo)
        self.transform = labelled.transform


def dataset_for(
    config: Config,
    split: str,
    samples: list[Sample] | None = None,
    augment: bool | None = None,
    pseudo: list[Sample] | None = None,
) -> SegmentationDataset:
    """The split's dataset; pseudo: the data.pseudo images to mix into rle_csv training."""
    augment = split == "train" if augment is None else augment
    spec = config.augmentation.train if augment else config.augmentation.val
    transform = build_transform(spec)
    if transform is not None:
        # albumentations seeds itself from OS entropy unless told: runs would not repeat.
        transform.set_random_seed(config.seed)
    samples = samples if samples is not None else split_samples(config, split)
    if isinstance(config.data, RleCsvData):
        return _rle_dataset(config, split, transform, samples, pseudo)
    _attach_donors(transform, samples, config)
    tiles = config.data.train_tiles
    if split == "train" and augment and tiles is not None:
        from podium.data.tiling import TiledDataset

        return TiledDataset(
            samples,
            mask_reader(config),
            tiles.scales,
            tiles.tile,
            tiles.overlap,
            transform,
            config.model.in_channels,
            mask_target_key(config),
            config.data.ignore_index,
        )
    return SegmentationDataset(
        samples,
        read_mask=mask_reader(config),
        transform=transform,
        channels=config.model.in_channels,
        target_key=mask_target_key(config),
    )


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
    """class_balanced: one pass over the masks to weight images by their rarest class."""
    if isinstance(train_set, PseudoMix):
        return None
    if config.data.sampler != "class_balanced":
        return None
    from podium.data.folds import presence_from_masks
    from podium.data.rle_dataset import RleCsvDataset
    from podium.data.samplers import class_balanced_sampler

    if isinstance(train_set, RleCsvDataset):
        presence = train_set.presence()  # read off the CSV, in the dataset's order
    elif isinstance(train_set, SegmentationDataset):
        classes = mask_head(config).classes
        reader = mask_reader(config)
        presence = presence_from_masks(train_set.samples, reader, classes, progress=True)
    else:
        raise ValueError("data.sampler: class_balanced works on whole images, not train_tiles")
    return class_balanced_sampler(presence, config.data.sampler_power, config.seed)
