"""The build layer: turns a validated Config into datasets, model, heads and engine objects.

Nothing below this layer sees the config; it receives typed values.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from podium.config import (
    CALLBACK_SCHEDULES,
    AeroscapesData,
    Config,
    FolderData,
    HeadConfig,
    RleCsvData,
)
from podium.data.dataset import SegmentationDataset
from podium.data.formats import Sample, aeroscapes_samples, folder_samples
from podium.data.images import read_mask
from podium.data.transforms import build_transform
from podium.engine.datamodule import PodiumDataModule
from podium.engine.module import HeadTask, PodiumModule
from podium.losses import LossContext, build_loss
from podium.metrics import MetricContext, build_metrics
from podium.models import HeadSpec, PodiumModel, build_model

__all__ = [
    "build_datamodule",
    "build_device_augment",
    "build_head_specs",
    "apply_init",
    "build_module",
    "schedule_callbacks",
    "build_podium_model",
    "dataset_for",
    "rle_dataset",
    "rle_presence",
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
    head = _mask_head(config)
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


def _mask_head(config: Config) -> HeadConfig | None:
    return next((h for h in config.heads.values() if h.kind == "mask"), None)


def _mask_target_key(config: Config) -> str:
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
        _mask_head(config).classes,
        config.model.in_channels,
        transform,
        _mask_target_key(config),
        # The CSV keys images by file name; a Sample's name is only the stem.
        image_ids=[s.image.name for s in samples],
    )


def rle_presence(config: Config, samples: list[Sample]) -> np.ndarray:
    """N×C bool class presence of rle_csv samples, in their order, from the CSV (no decoding)."""
    dataset = rle_dataset(config, samples)
    row = {image_id: n for n, image_id in enumerate(dataset.ids)}
    return dataset.presence()[[row[s.image.name] for s in samples]]


def _rle_dataset(config: Config, split: str, transform, samples: list[Sample]):
    """The split's RleCsvDataset; the train split mixes in data.pseudo when set."""
    data, head = config.data, _mask_head(config)
    labelled = rle_dataset(config, samples, transform)
    if split != "train" or data.pseudo is None:
        return labelled
    from podium.data.rle_csv import read_rle_csv
    from podium.data.rle_dataset import RleCsvDataset

    # Parsed once: the ids choose the samples and the same labels feed the dataset.
    labels = read_rle_csv(data.pseudo.csv, num_classes=head.classes)
    pseudo = RleCsvDataset(
        data.pseudo.images,
        labels,
        head.classes,
        config.model.in_channels,
        transform,
        _mask_target_key(config),
        image_ids=sorted(labels),
    )
    return PseudoMix(labelled, pseudo)


class PseudoMix(torch.utils.data.ConcatDataset):
    """Labelled then pseudo-labelled items; the batch sampler fixes their mix per batch."""

    def __init__(self, labelled, pseudo) -> None:
        super().__init__([labelled, pseudo])
        self.n_labelled, self.n_pseudo = len(labelled), len(pseudo)
        self.transform = labelled.transform


def dataset_for(
    config: Config, split: str, samples: list[Sample] | None = None, augment: bool | None = None
) -> SegmentationDataset:
    augment = split == "train" if augment is None else augment
    spec = config.augmentation.train if augment else config.augmentation.val
    transform = build_transform(spec)
    if transform is not None:
        # albumentations seeds itself from OS entropy unless told: runs would not repeat.
        transform.set_random_seed(config.seed)
    samples = samples if samples is not None else split_samples(config, split)
    if isinstance(config.data, RleCsvData):
        return _rle_dataset(config, split, transform, samples)
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
            _mask_target_key(config),
            config.data.ignore_index,
        )
    return SegmentationDataset(
        samples,
        read_mask=mask_reader(config),
        transform=transform,
        channels=config.model.in_channels,
        target_key=_mask_target_key(config),
    )


def build_datamodule(config: Config, samples=None) -> PodiumDataModule:
    """samples: optional (train, val) Sample lists, e.g. one fold of a k-fold split."""
    data = config.data
    train, val = samples if samples is not None else (None, None)
    train_set = dataset_for(config, "train", samples=train)
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
        classes = _mask_head(config).classes
        reader = mask_reader(config)
        presence = presence_from_masks(train_set.samples, reader, classes, progress=True)
    else:
        raise ValueError("data.sampler: class_balanced works on whole images, not train_tiles")
    return class_balanced_sampler(presence, config.data.sampler_power, config.seed)


def build_head_specs(config: Config) -> list[HeadSpec]:
    """Class heads learn the per-image presence of the mask head's classes."""
    presence = _mask_target_key(config) if _mask_head(config) is not None else ""
    return [
        HeadSpec(
            name,
            h.kind,
            h.classes,
            h.activation,
            h.source,
            h.target or "",
            h.pooling,
            h.dropout,
            presence if h.kind == "class" else "",
        )
        for name, h in config.heads.items()
    ]


def build_podium_model(config: Config) -> PodiumModel:
    m = config.model
    if m.in_channels == 1 and m.grayscale_source is not None:
        from podium.models.grayscale import build_grayscale_model

        return build_grayscale_model(
            m.arch,
            m.encoder_name,
            build_head_specs(config),
            m.encoder_weights,
            m.grayscale_source,
            **m.kwargs,
        )
    return build_model(
        m.arch,
        m.encoder_name,
        build_head_specs(config),
        m.encoder_weights,
        m.in_channels,
        **m.kwargs,
    )


def _tasks(config: Config, specs: list[HeadSpec]) -> dict[str, HeadTask]:
    ignore = config.data.ignore_index
    tasks = {}
    for spec in specs:
        head = config.heads[spec.name]
        loss_ctx = LossContext(spec.mode, spec.classes, ignore)
        terms = [(t.name, t.weight, t.kwargs) for t in head.loss]
        metric_ctx = MetricContext(spec.mode, spec.classes, ignore, spatial=spec.kind == "mask")
        tasks[spec.name] = HeadTask(
            spec, build_loss(terms, loss_ctx), head.weight, build_metrics(head.metrics, metric_ctx)
        )
    return tasks


def configure_optimization(module: PodiumModule, config: Config) -> dict[str, Any]:
    """Optimizer + scheduler config for Lightning, from the optim registries."""
    from podium.optim import build_optimizer, build_scheduler, load_optimizer_state

    opt = config.optimizer
    optimizer = build_optimizer(module.model, opt.name, opt.lr, opt.weight_decay, **opt.kwargs)
    if config.init.weights is not None and config.init.optimizer_state:
        load_optimizer_state(optimizer, config.init.weights)
    if config.schedule.name in CALLBACK_SCHEDULES:
        return {"optimizer": optimizer}  # the callback owns the LR
    trainer = module.trainer
    epochs = config.trainer.max_epochs
    steps = max(1, int(trainer.estimated_stepping_batches) // epochs)
    sched = config.schedule
    scheduler = build_scheduler(
        optimizer,
        sched.name,
        epochs=epochs,
        steps_per_epoch=steps,
        monitor=config.trainer.monitor,
        monitor_mode=config.trainer.monitor_mode,
        **sched.kwargs,
    )
    if scheduler is None:
        return {"optimizer": optimizer}
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _on_cuda(config: Config) -> bool:
    return torch.cuda.is_available() and config.trainer.accelerator in ("auto", "gpu", "cuda")


def use_channels_last(config: Config) -> bool:
    setting = config.trainer.channels_last
    return _on_cuda(config) if setting == "auto" else bool(setting)


def use_compile(config: Config) -> bool:
    setting = config.trainer.compile
    return _on_cuda(config) if setting == "auto" else bool(setting)


def apply_init(config: Config, model: PodiumModel) -> None:
    """Previous-run weights, then freezing: what trains is decided before the optimizer."""
    from podium.optim import freeze_encoder, load_weights, unfreeze_last_stages

    init = config.init
    if init.weights is not None:
        report = load_weights(model, init.weights, strict=init.strict)
        print(f"init.weights {init.weights}: {report}")
    if init.freeze_encoder:
        freeze_encoder(model)
        unfreeze_last_stages(model, init.unfreeze_last_stages)


def schedule_callbacks(config: Config) -> list:
    """The LR callback of a callback schedule (flat_cosine_revert), else nothing."""
    sched = config.schedule
    if sched.name not in CALLBACK_SCHEDULES:
        return []
    make = CALLBACK_SCHEDULES.get(sched.name)(**sched.kwargs)
    return [make(config.trainer.monitor, config.trainer.monitor_mode)]


def build_module(config: Config, model: PodiumModel | None = None) -> PodiumModule:
    model = model or build_podium_model(config)
    specs = build_head_specs(config)
    module = PodiumModule(
        model,
        _tasks(config, specs),
        mean=config.data.mean,
        std=config.data.std,
        configure_optim=functools.partial(configure_optimization, config=config),
        config=config.model_dump(mode="json"),
        channels_last=use_channels_last(config),
        compile=use_compile(config),
        compile_mode=config.trainer.compile_mode,
        device_augment=build_device_augment(config),
    )
    return module


def build_device_augment(config: Config):
    """augmentation.device as a DeviceAugment seeded by the run's seed, or None."""
    ops = config.augmentation.device
    if not ops:
        return None
    from podium.engine.device_augment import DeviceAugment, build_device_ops

    return DeviceAugment(build_device_ops([(op.name, op.kwargs) for op in ops]), config.seed)
