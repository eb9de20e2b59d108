"""Training throughput: model ceiling vs podium end to end vs the usual hand-written pipeline.

All three in one run on the current machine, same model, same files, same augmentation:

  (1) ceiling   synthetic tensors already on the device (fp32/TF32, bf16, +channels_last,
                +torch.compile)
  (2) podium    real JPEG/PNG files through podium's Dataset/DataModule and Lightning module
                (uint8 from workers, normalization + channels_last on the device, bf16, compile)
      (2a)      + data.cache: ram (every file decoded once, before training)
      (2b)      + data.cache: ram + augmentation.device: rot90, transpose, brightness/contrast
                and noise run on the device batch; Affine and CoarseDropout stay in the workers
  (3) baseline  the usual hand-written loop: cv2 + albumentations + Normalize + ToTensorV2 in
                the workers (float32 over IPC), then the same model, bf16, channels_last, compile

Prints img/s and the ratios of each (2) row to (1) and (3), plus loader-alone rates and peak
GPU memory. Then a breakdown (train_breakdown.py): podium's step alone on a replayed batch, the
loader's cost per image by stage, the cores it needs, and which side bounds (2).

  python benchmarks/bench_train.py                       # H100 setting of issue 6
  python benchmarks/bench_train.py --device cpu --size 64 --batch 4 --images 16 --steps 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import albumentations as A
import cv2
import lightning.pytorch as pl
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader, Dataset
from train_breakdown import bench_trainer, loader_costs, print_breakdown, step_alone

from podium.build import build_datamodule, build_module
from podium.config import load_config
from podium.data.synthetic import make_folder_dataset
from podium.engine.datamodule import resolve_workers

AUGMENT = [
    {"__class_fullname__": "RandomRotate90", "p": 0.5},
    {"__class_fullname__": "Transpose", "p": 0.5},
    {"__class_fullname__": "Affine", "scale": [0.9, 1.1], "rotate": [-10, 10], "p": 0.5},
    {"__class_fullname__": "ColorJitter", "brightness": 0.2, "contrast": 0.2, "p": 0.5},
    {"__class_fullname__": "GaussNoise", "p": 0.3},
    {"__class_fullname__": "CoarseDropout", "p": 0.3},
]
# (2b): the geometric/colour part of AUGMENT as augmentation.device ops, the rest on the CPU.
AUGMENT_CPU_PART = [AUGMENT[2], AUGMENT[5]]  # Affine, CoarseDropout
AUGMENT_DEVICE = [
    {"name": "rot90", "p": 0.5},
    {"name": "transpose", "p": 0.5},
    {"name": "brightness_contrast", "brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5},
    {"name": "gaussian_noise", "p": 0.3},
]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=12)
    p.add_argument("--images", type=int, default=512, help="files generated for (2) and (3)")
    p.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--workers", type=int, default=None, help="default: cores - 1")
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--data", type=Path, default=None, help="reuse a generated folder")
    p.add_argument(
        "--skip-ceiling",
        type=float,
        default=None,
        help="skip (1) and use this img/s as the ceiling (from an earlier run)",
    )
    return p.parse_args()


def sync(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def config_dict(args, data: Path, compile_: bool, cache: bool = False, device: bool = False):
    """The benchmark's podium config; cache: data.cache ram; device: AUGMENT_DEVICE on device."""
    return {
        "experiment": "bench",
        "output_dir": str(data / "runs"),
        "data": {
            "format": "folder",
            "train": {"images": str(data / "images"), "masks": str(data / "masks")},
            "val": {"images": str(data / "images"), "masks": str(data / "masks")},
            "classes": [f"c{i}" for i in range(args.classes)],
            "batch_size": args.batch,
            "num_workers": args.workers if args.workers is not None else "auto",
            "cache": "ram" if cache else "none",
        },
        "model": {"arch": "Unet", "encoder_name": args.encoder, "encoder_weights": None},
        "heads": {"mask": {"classes": args.classes, "loss": [{"name": "ce"}], "metrics": ["iou"]}},
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "augmentation": {
            "train": AUGMENT_CPU_PART if device else AUGMENT,
            "device": AUGMENT_DEVICE if device else [],
        },
        "trainer": {
            "compile": compile_,
            "accelerator": "gpu" if args.device != "cpu" else "cpu",
            "progress_bar": False,
        },
    }


# --- (1) ceiling -------------------------------------------------------------------------------


def ceiling(args, module_factory, bf16: bool, channels_last: bool, compile_: bool) -> float:
    """Training img/s of the bare model on device tensors (no data loading at all)."""
    module = module_factory().to(args.device)
    model = module.model
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=args.device != "cpu")
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch, args.size, args.size), device=args.device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            out = step_model(x)["mask"]
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(args, step)


def timed(args, step) -> float:
    for _ in range(args.warmup):
        step()
    start = sync(args.device)
    for _ in range(args.steps):
        step()
    return args.batch * args.steps / (sync(args.device) - start)


# --- (2) podium --------------------------------------------------------------------------------


def podium_end_to_end(
    args, data: Path, compile_: bool, cache: bool = False, device: bool = False
) -> tuple[float, float]:
    """Lightning fit through podium's DataModule and module; img/s after warm-up steps."""
    config = load_config(raw=config_dict(args, data, compile_, cache, device))
    module = build_module(config)
    start = time.perf_counter()
    datamodule = build_datamodule(config)
    if cache:
        print(f"    cache filled in {time.perf_counter() - start:.1f} s (not in img/s)")
    timer = _StepTimer(args.device, args.warmup, args.warmup + args.steps)
    trainer = bench_trainer(args, config, timer)
    trainer.fit(module, datamodule=datamodule)
    loader_rate = loader_alone(datamodule.train_dataloader(), args)
    return args.batch * args.steps / (timer.end - timer.start), loader_rate


class _StepTimer(pl.Callback):
    """Times optimizer steps [first, last)."""

    def __init__(self, device: str, first: int, last: int) -> None:
        self.device, self.first, self.last = device, first, last
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0:
            self.t0 = time.perf_counter()
        if trainer.global_step % 16 == 0:
            print(
                f"    step {trainer.global_step}: {time.perf_counter() - self.t0:.1f} s", flush=True
            )
        if trainer.global_step == self.first:
            self.start = sync(self.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.last:
            self.end = sync(self.device)


# --- (3) hand-written baseline -------------------------------------------------------------------


class HandWrittenDataset(Dataset):
    """The usual way: decode, augment, Normalize + ToTensorV2 in the worker (float32 out)."""

    def __init__(self, data: Path) -> None:
        self.images = sorted((data / "images").iterdir())
        self.masks = sorted((data / "masks").iterdir())
        self.transform = A.Compose(
            [*(A.from_dict({"transform": t}) for t in AUGMENT), A.Normalize(), ToTensorV2()]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = cv2.cvtColor(cv2.imread(str(self.images[i])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(self.masks[i]), cv2.IMREAD_GRAYSCALE)
        out = self.transform(image=image, mask=mask)
        return out["image"], out["mask"].long()


def hand_written(args, data: Path, module_factory, compile_: bool) -> tuple[float, float]:
    workers = args.workers if args.workers is not None else max(0, (os.cpu_count() or 1) - 1)
    loader = DataLoader(
        HandWrittenDataset(data),
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=args.device != "cpu",
        persistent_workers=workers > 0,
    )
    model = module_factory().model.to(args.device).to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=args.device != "cpu")
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = _forever(loader)

    def step() -> None:
        x, y = next(batches)
        x = x.to(args.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(args.device, non_blocking=True)
        with torch.autocast(
            args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.device != "cpu"
        ):
            out = step_model(x)["mask"]
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(args, step), loader_alone(loader, args)


def _forever(loader):
    while True:
        yield from loader


def loader_alone(loader, args) -> float:
    """Batches/s of the DataLoader with no model: the data path's own ceiling."""
    batches = _forever(loader)
    for _ in range(min(args.warmup, 3)):
        next(batches)
    start = time.perf_counter()
    for _ in range(args.steps):
        next(batches)
    return args.batch * args.steps / (time.perf_counter() - start)


def main() -> None:
    args = parse()
    compile_ = not args.no_compile and args.device != "cpu"
    if args.device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    data = args.data or Path(tempfile.mkdtemp(prefix="podium-bench-"))
    if not (data / "images").is_dir():
        t0 = time.perf_counter()
        make_folder_dataset(
            data,
            n=args.images,
            size=(args.size, args.size),
            num_classes=args.classes,
            image_ext=".jpg",
        )
        print(f"generated {args.images} JPEG/PNG pairs in {time.perf_counter() - t0:.1f} s: {data}")
    factory = lambda: build_module(load_config(raw=config_dict(args, data, False)))  # noqa: E731
    rows = []
    if args.skip_ceiling:
        rows.append(("(1) ceiling, given", args.skip_ceiling, None))
    for name, bf16, cl, comp in [
        ("fp32 (TF32)", False, False, False),
        ("bf16", True, False, False),
        ("bf16 + channels_last", True, True, False),
        ("bf16 + channels_last + compile", True, True, True),
    ]:
        if args.skip_ceiling or (comp and not compile_) or (bf16 and args.device == "cpu"):
            continue  # CPU: bf16 autocast is slower than fp32 there, so only fp32 is shown
        rows.append((f"(1) ceiling, {name}", ceiling(args, factory, bf16, cl, comp), None))
        print(f"{rows[-1][0]}: {rows[-1][1]:.1f} img/s", flush=True)
    best_ceiling = max(r[1] for r in rows)
    podium_rows = []
    for name, cache, device in PODIUM_ROWS:
        rate, loader = podium_end_to_end(args, data, compile_, cache, device)
        podium_rows.append((name, rate, loader))
        print(f"{name}: {rate:.1f} img/s (loader alone {loader:.0f})", flush=True)
    rows += podium_rows
    theirs, theirs_loader = hand_written(args, data, factory, compile_)
    rows.append(("(3) hand-written baseline", theirs, theirs_loader))
    report(args, rows, podium_rows, best_ceiling, theirs)
    breakdown(args, data, compile_, podium_rows[0])


def breakdown(args, data: Path, compile_: bool, default_row) -> None:
    """What bounds (2): podium's step alone, and the loader's per-image cost by stage."""
    config = load_config(raw=config_dict(args, data, compile_))
    timer = _StepTimer(args.device, args.warmup, args.warmup + args.steps)
    step_rate = step_alone(args, config, timer)
    costs = loader_costs(config, images=min(args.images, 64))
    workers = resolve_workers(args.workers if args.workers is not None else "auto")
    _, end_to_end, loader_rate = default_row
    print_breakdown(costs, step_rate, end_to_end, loader_rate, workers)


PODIUM_ROWS = [  # (row name, data.cache ram, augmentation.device)
    ("(2) podium end to end", False, False),
    ("(2a) podium + data.cache: ram", True, False),
    ("(2b) podium + cache + augmentation.device", True, True),
]


def report(args, rows, podium_rows, best_ceiling, theirs) -> None:
    name = torch.cuda.get_device_name() if args.device != "cpu" else "cpu"
    print(
        f"\ndevice {args.device} ({name}), Unet-{args.encoder}, {args.size}x{args.size}, "
        f"batch {args.batch}, {args.classes} classes, AdamW"
    )
    print(f"{'setting':<42}{'train img/s':>12}{'loader img/s':>14}")
    for name, rate, loader in rows:
        loader_text = f"{loader:14.0f}" if loader else f"{'':>14}"
        print(f"{name:<42}{rate:12.1f}{loader_text}")
    print()
    for name, rate, _ in podium_rows:
        tag = name.split()[0]
        print(f"ratio {tag}/(1) best ceiling: {rate / best_ceiling:.2f}")
        print(f"ratio {tag}/(3) hand-written: {rate / theirs:.2f}")
    base = podium_rows[0][1]
    for name, rate, _ in podium_rows[1:]:
        print(f"ratio {name.split()[0]}/(2) podium default: {rate / base:.2f}")
    if args.device != "cpu":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
