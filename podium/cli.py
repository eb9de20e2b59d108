"""The `podium` command line: parse, load the config, call one function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from podium.config import ConfigError, load_config
from podium.data.errors import DataError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train, evaluate and run competition-grade image models from one YAML.",
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Experiment YAML.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override: key.sub=value.")]


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def train(
    config: ConfigOpt,
    set_: SetOpt = None,
    resume: Annotated[Path | None, typer.Option(help="Checkpoint to resume from.")] = None,
) -> None:
    """Fit the model; writes a run folder with config, history, curves and checkpoints."""
    from podium.engine.fit import train as fit

    try:
        cfg = load_config(config, set_)
        run_dir = fit(cfg, resume=resume)
    except (ConfigError, DataError, FileNotFoundError) as error:
        _fail(error)
    typer.echo(f"run folder: {run_dir}")


@app.command()
def evaluate(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint to evaluate.")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    output: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
) -> None:
    """Per-class IoU/Dice, mIoU, pixel accuracy, confusion matrix, best/worst grid, ms/image."""
    from podium.inference.evaluate import evaluate as run_evaluation
    from podium.inference.loading import load_module

    try:
        cfg = load_config(config, set_) if config else None
        cfg, module = load_module(ckpt, cfg)
        out = output or ckpt.resolve().parent.parent / "evaluation"
        result = run_evaluation(cfg, module, out)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as error:
        _fail(error)
    for name, values in result.per_class.items():
        typer.echo(f"  {name:>16}: IoU {values['iou']:.4f}  Dice {values['dice']:.4f}")
    typer.echo(
        f"mIoU {result.miou:.4f}  mDice {result.mdice:.4f}  pixel accuracy "
        f"{result.pixel_accuracy:.4f}  {result.ms_per_image:.2f} ms/image "
        f"({result.images} images)"
    )
    typer.echo(f"report: {out}")


@app.command()
def predict(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint.")],
    input: Annotated[Path, typer.Option("--input", help="Folder of images.")],
    output: Annotated[Path, typer.Option(help="Output folder.")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    overlays: Annotated[bool, typer.Option(help="Also write overlays.")] = True,
) -> None:
    """Predict masks for a folder of images: PNG masks and overlays."""
    from podium.inference.loading import load_module
    from podium.inference.predict import predict_folder

    try:
        cfg = load_config(config, set_) if config else None
        cfg, module = load_module(ckpt, cfg)
        summary = predict_folder(cfg, module, input, output, overlays)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as error:
        _fail(error)
    typer.echo(
        f"wrote {summary.written} masks to {output} in {summary.seconds:.1f} s; "
        f"skipped {len(summary.skipped)}"
    )
    for line in summary.skipped:
        typer.secho(f"  skipped {line}", fg=typer.colors.YELLOW, err=True)


@app.command("lr-sweep")
def lr_sweep(
    config: ConfigOpt,
    set_: SetOpt = None,
    lr_min: Annotated[float, typer.Option(help="Smallest LR.")] = 1e-5,
    lr_max: Annotated[float, typer.Option(help="Largest LR.")] = 1e-1,
    num: Annotated[int, typer.Option(help="LRs, spaced exponentially.")] = 8,
    steps: Annotated[int, typer.Option(help="Training steps per LR.")] = 20,
    val_batches: Annotated[int, typer.Option(help="Validation batches per LR.")] = 5,
    output: Annotated[Path | None, typer.Option(help="Folder for CSV and PNG.")] = None,
) -> None:
    """Validation loss vs LR from the same initial weights; CSV, PNG and a suggested LR."""
    from podium.engine.lr_sweep import lr_sweep as sweep

    try:
        cfg = load_config(config, set_)
        out = output or Path(cfg.output_dir) / cfg.experiment / "lr_sweep"
        points, suggestion = sweep(cfg, out, lr_min, lr_max, num, steps, val_batches)
    except (ConfigError, DataError, FileNotFoundError) as error:
        _fail(error)
    for p in points:
        typer.echo(f"  lr {p.lr:.2e}: val loss {p.val_loss:.4f}  train loss {p.train_loss:.4f}")
    typer.echo(f"suggested lr {suggestion:.3g} (validation loss falls fastest); plot: "
               f"{out / 'lr_sweep.png'}")


@app.command()
def demo(
    output_dir: Annotated[Path, typer.Option(help="Where runs go.")] = Path("runs"),
    cache: Annotated[Path | None, typer.Option(help="Dataset cache folder.")] = None,
    set_: SetOpt = None,
) -> None:
    """Build the bundled Blue Marble dataset, then train, evaluate and predict on it."""
    from podium.demo_run import run_demo

    try:
        run_demo(output_dir, cache, set_ or [])
    except (ConfigError, DataError) as error:
        _fail(error)


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
