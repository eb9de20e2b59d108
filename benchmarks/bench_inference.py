"""Inference throughput: batched TTA vs a per-image loop, podium tiles vs MONAI's.

Both comparisons in one run on the current device, same model (Unet-ResNet34, random
weights, 12 classes), same inputs:

  (a) TTA d4   `tta_predict` (all 8 variants of the batch stacked into one forward) vs a
               loop that runs the same 8 variants one image at a time, deaugmenting alike;
               images are --batch random tile×tile images
  (b) tiles    `sliding_window_predict` vs `monai.inferers.sliding_window_inference` on one
               size×size image, same tile, overlap, gaussian blending (sigma 0.125·tile) and
               windows per batch (monai is needed only here: `pip install monai`)

Prints the median of --repeats timed runs (after warm-up), images/s and the ratios.

  python benchmarks/bench_inference.py                                  # GPU: 2048², tile 512
  python benchmarks/bench_inference.py --device cpu --size 256 --tile 128 --repeats 1
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from podium.build import build_module
from podium.config import load_config
from podium.engine.module import PodiumModule
from podium.geometry import inverse_image, transform_image
from podium.inference.forward import predict_probabilities
from podium.inference.tiles import sliding_window_predict, window_grid
from podium.inference.tta import tta_predict, tta_transforms


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=2048, help="side of the tiled image (b)")
    p.add_argument("--tile", type=int, default=512, help="window side (b); image side (a)")
    p.add_argument("--batch", type=int, default=8, help="images (a); windows per batch (b)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--classes", type=int, default=12)
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--max-batch", type=int, default=None, help="TTA chunk size (default: all)")
    return p.parse_args()


def build(args: argparse.Namespace) -> PodiumModule:
    """Unet-<encoder>, random weights, one softmax mask head; data paths are never read."""
    nowhere = str(Path("/nonexistent"))
    raw = {
        "experiment": "bench_inference",
        "data": {
            "format": "folder",
            "train": {"images": nowhere, "masks": nowhere},
            "val": {"images": nowhere, "masks": nowhere},
            "classes": [f"c{i}" for i in range(args.classes)],
        },
        "model": {"arch": "Unet", "encoder_name": args.encoder, "encoder_weights": None},
        "heads": {"mask": {"classes": args.classes, "loss": [{"name": "ce"}]}},
    }
    return build_module(load_config(raw=raw)).eval().to(args.device)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], args: argparse.Namespace) -> float:
    """Median seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(args.warmup):
        fn()
    times = []
    for _ in range(args.repeats):
        sync(args.device)
        start = time.perf_counter()
        fn()
        sync(args.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.inference_mode()
def per_image_d4(module: PodiumModule, images: torch.Tensor) -> torch.Tensor:
    """The loop (a) is compared against: 8 single-image forwards per image, same deaugment."""
    outs = []
    for image in images:
        total = 0
        for t in tta_transforms("d4"):
            probs = predict_probabilities(module, transform_image(image[None], t))["mask"]
            total = total + inverse_image(probs, t)
        outs.append(total / 8)
    return torch.cat(outs)


def monai_tiles(module: PodiumModule, image: torch.Tensor, args: argparse.Namespace):
    """MONAI's sliding window on the same model; None when monai is not installed."""
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        return None

    def predictor(windows: torch.Tensor) -> torch.Tensor:
        return predict_probabilities(module, windows.round().to(torch.uint8))["mask"]

    return functools.partial(
        sliding_window_inference,
        image[None].float(),
        (args.tile, args.tile),
        args.batch,
        predictor,
        overlap=args.overlap,
        mode="gaussian",
        sigma_scale=0.125,
    )


def bench_tta(module: PodiumModule, args: argparse.Namespace) -> list[tuple[str, int, float]]:
    shape = (args.batch, 3, args.tile, args.tile)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, device=args.device)
    batched = tta_predict(module, images, "d4", max_batch=args.max_batch)["mask"]
    diff = (batched - per_image_d4(module, images)).abs().max().item()
    print(f"(a) max |batched - loop| = {diff:.2e} (rounding only; bf16 on CUDA)")
    return [
        (
            "TTA d4 batched (podium)",
            args.batch,
            timed(lambda: tta_predict(module, images, "d4", max_batch=args.max_batch), args),
        ),
        ("TTA d4 per-image loop", args.batch, timed(lambda: per_image_d4(module, images), args)),
    ]


def bench_tiles(module: PodiumModule, args: argparse.Namespace) -> list[tuple[str, int, float]]:
    image = torch.randint(0, 256, (3, args.size, args.size), dtype=torch.uint8, device=args.device)
    ours = functools.partial(
        sliding_window_predict,
        functools.partial(predict_probabilities, module),
        image,
        args.tile,
        args.overlap,
        "gaussian",
        args.batch,
    )
    windows = len(window_grid(args.size, args.tile, args.overlap)[2]) ** 2
    print(f"(b) {args.size}² image, tile {args.tile}, overlap {args.overlap}: {windows} windows")
    rows = [("tiles: podium sliding_window_predict", 1, timed(ours, args))]
    theirs = monai_tiles(module, image, args)
    if theirs is None:
        print("(b) monai is not installed: `pip install monai` to compare (skipped)")
        return rows
    diff = (ours()["mask"] - theirs()[0]).abs().mean().item()
    # Not expected to be ~0: MONAI floors blend weights at 1e-3 (podium 1e-6) and pads/places
    # windows differently when the size is not a whole grid; random weights give near one-hot
    # outputs, so windows that disagree make those differences visible.
    print(f"(b) mean |podium - MONAI| = {diff:.2e} (blend floor and grids differ; see source)")
    return [*rows, ("tiles: MONAI sliding_window_inference", 1, timed(theirs, args))]


def report(args: argparse.Namespace, rows: list[tuple[str, int, float]]) -> None:
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"\ndevice {args.device} ({name}), Unet-{args.encoder}, {args.classes} classes, "
        f"median of {args.repeats} after {args.warmup} warm-up"
    )
    print(f"{'case':40s} {'images':>6s} {'median s':>9s} {'images/s':>9s}")
    rates = {}
    for case, count, seconds in rows:
        rates[case] = count / seconds
        print(f"{case:40s} {count:6d} {seconds:9.3f} {rates[case]:9.2f}")
    ratio = rates["TTA d4 batched (podium)"] / rates["TTA d4 per-image loop"]
    print(f"TTA batched / per-image loop: {ratio:.2f}×")
    if "tiles: MONAI sliding_window_inference" in rates:
        ratio = (
            rates["tiles: podium sliding_window_predict"]
            / rates["tiles: MONAI sliding_window_inference"]
        )
        print(f"tiles podium / MONAI: {ratio:.2f}×")


def main() -> None:
    args = parse()
    module = build(args)
    report(args, bench_tta(module, args) + bench_tiles(module, args))


if __name__ == "__main__":
    main()
