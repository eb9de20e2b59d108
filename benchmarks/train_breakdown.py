"""Where podium's end-to-end training time goes: the step alone, and the loader's cost per image.

Two measurements that bench_train.py's rows cannot separate:

  step alone   podium's LightningModule under Lightning on one real uint8 batch replayed from
               memory: transfer, normalization, channels_last, forward/backward, losses,
               metrics and logging, but no decoding or augmentation. Its gap to the ceiling
               (1) is podium's step overhead; its gap to (2) is the data path's.
  per image    in one process: decode (image + mask), the config's CPU augmentation, the
               whole Dataset item, and collation. `cores needed` = per-image seconds × the
               step-alone rate: how many worker cores the loader needs to keep the step fed.

The verdict compares them with the measured end-to-end and loader-alone rates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset, default_collate

from podium.build import build_datamodule, build_module, dataset_for, mask_reader
from podium.config import Config
from podium.data.images import read_image
from podium.engine.environment import resolve_precision

__all__ = ["LoaderCosts", "bench_trainer", "loader_costs", "print_breakdown", "step_alone"]


class _SameBatch(Dataset):
    """`length` times the same collated batch (batch_size=None: no collation per step)."""

    def __init__(self, batch: dict, length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


def step_alone(args, config: Config, step_timer: pl.Callback) -> float:
    """img/s of podium's training step on one real batch replayed from memory."""
    datamodule = build_datamodule(config)
    batch = next(iter(datamodule.train_dataloader()))
    replay = DataLoader(
        _SameBatch(batch, args.warmup + args.steps + 1),
        batch_size=None,
        pin_memory=args.device != "cpu",
    )
    bench_trainer(args, config, step_timer).fit(build_module(config), train_dataloaders=replay)
    return args.batch * args.steps / (step_timer.end - step_timer.start)


def bench_trainer(args, config: Config, step_timer: pl.Callback) -> pl.Trainer:
    """Warm-up + timed steps, no validation, logging, checkpoints or progress bar."""
    return pl.Trainer(
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator=config.trainer.accelerator,
        devices=1,
        callbacks=[step_timer],
        precision=resolve_precision("auto", config.trainer.accelerator),
        num_sanity_val_steps=0,
    )


@dataclass(frozen=True)
class LoaderCosts:
    """Milliseconds per image, measured in one process."""

    decode: float
    augment: float
    item: float  # the whole Dataset.__getitem__: decode + augment + tensor conversion
    collate: float

    @property
    def total(self) -> float:
        return self.item + self.collate


def loader_costs(config: Config, images: int) -> LoaderCosts:
    """Per-image cost of each data-path stage (mean over `images` files, after one warm-up)."""
    dataset = dataset_for(config, "train")
    samples = dataset.samples[:images]
    read_mask = mask_reader(config)
    decoded = []

    def decode() -> None:
        decoded.clear()
        for s in samples:
            decoded.append((read_image(s.image, dataset.channels), read_mask(s.mask)))

    def augment() -> None:
        for image, mask in decoded:
            if dataset.transform is not None:
                dataset.transform(image=image, mask=mask)

    items = []

    def item() -> None:
        items[:] = [dataset[i] for i in range(len(samples))]

    def collate() -> None:
        for start in range(0, len(items), config.data.batch_size):
            default_collate(items[start : start + config.data.batch_size])

    stages = {"decode": decode, "augment": augment, "item": item, "collate": collate}
    return LoaderCosts(**{name: _ms_per_image(run, len(samples)) for name, run in stages.items()})


def _ms_per_image(stage, count: int) -> float:
    stage()  # warm-up: file cache, lazy imports, first-call allocations
    start = time.perf_counter()
    stage()
    return 1000 * (time.perf_counter() - start) / count


def print_breakdown(
    costs: LoaderCosts, step_rate: float, end_to_end: float, loader_rate: float, workers: int
) -> None:
    """Per-stage table, then which side bounds the end-to-end rate."""
    print("\nloader cost per image (one process):")
    for name in ("decode", "augment", "item", "collate"):
        print(f"  {name:<9}{getattr(costs, name):8.2f} ms")
    cores = costs.total / 1000 * step_rate
    ideal_loader = 1000 * max(workers, 1) / costs.total
    print(f"podium step alone (replayed batch): {step_rate:.1f} img/s")
    print(f"cores the loader needs to feed that step: {cores:.1f} (workers here: {workers})")
    lost_to = "IPC, pinning and worker scheduling" if workers else "the DataLoader machinery"
    print(
        f"loader alone {loader_rate:.0f} img/s vs {ideal_loader:.0f} if {max(workers, 1)} "
        f"process(es) ran items back to back: {loader_rate / ideal_loader:.2f} of that "
        f"(the rest is {lost_to})"
    )
    bound = "the data path" if loader_rate < step_rate else "the training step"
    print(f"bound: {bound} (step alone {step_rate:.0f}, loader alone {loader_rate:.0f} img/s)")
    if end_to_end < 0.8 * min(step_rate, loader_rate):
        print(
            f"end to end {end_to_end:.0f} img/s is below both: loader workers and the step's "
            "main thread compete for the same cores"
        )
