"""The `podium` command line: parse, load the config, call one function."""

from __future__ import annotations

import functools
import sys
from collections import Counter
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


# What a user can fix (config, data, paths, values): a red line and exit 2, no traceback.
USER_ERRORS = (ConfigError, DataError, FileNotFoundError, ValueError, KeyError)


def command(name: str | None = None):
    """app.command, with the one error handler every command shares."""

    def register(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as error:
                typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
                raise typer.Exit(2) from None

        return app.command(name)(run)

    return register


@command()
def train(
    config: ConfigOpt,
    set_: SetOpt = None,
    resume: Annotated[
        str | None, typer.Option(help="Checkpoint to resume from, or 'auto' (newest last.ckpt).")
    ] = None,
    fold: Annotated[
        str | None, typer.Option(help="Train one fold (0..k-1) or 'all' (needs data.folds).")
    ] = None,
) -> None:
    """Fit the model; writes a run folder with config, history, curves and checkpoints."""
    from podium.workflows.fit import latest_last_checkpoint
    from podium.workflows.fit import train as fit
    from podium.workflows.folds import all_folds, fold_samples, train_folds

    cfg = load_config(config, set_)
    if resume is not None:
        resume = latest_last_checkpoint(cfg) if resume == "auto" else Path(resume)
    if fold is None:
        run_dirs = [fit(cfg, resume=resume)]
    elif resume is not None:
        run_dirs = [fit(cfg, resume=resume, samples=fold_samples(cfg, int(fold)))]
    else:
        folds = all_folds(cfg) if fold == "all" else [_fold_number(fold)]
        run_dirs = train_folds(cfg, folds)
    for run_dir in run_dirs:
        typer.echo(f"run folder: {run_dir}")


def _fold_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"--fold must be a fold number or 'all', got {text!r}")
    return int(text)


@command()
def split(config: ConfigOpt, set_: SetOpt = None) -> None:
    """Write the k-fold CSV (random, stratified, group, stratified_group); report leaks."""
    from podium.workflows.folds import run_split

    path, folds, leaks = run_split(load_config(config, set_))
    counts = sorted(Counter(folds.values()).items())
    typer.echo(f"wrote {path}: " + ", ".join(f"fold {k}: {n} images" for k, n in counts))
    if leaks:
        typer.secho(
            f"warning: {len(leaks)} near-duplicate pairs sit in different folds "
            "(validation would see training images):",
            fg=typer.colors.YELLOW,
            err=True,
        )
        for a, b, distance in leaks[:20]:
            typer.secho(f"  {a} ~ {b} (distance {distance})", fg=typer.colors.YELLOW, err=True)


@command()
def check(
    config: ConfigOpt,
    set_: SetOpt = None,
    output: Annotated[Path | None, typer.Option(help="Folder for the reports.")] = None,
) -> None:
    """Decode every image and label (mask file, dense target, RLE row) of every split (and
    data.pseudo); report; exit 1 on problems."""
    from podium.workflows.check import run_check

    cfg = load_config(config, set_)
    out = output or Path(cfg.output_dir) / cfg.experiment / ".validation"
    result = run_check(cfg, out)
    for split, line in result.summaries.items():
        typer.echo(f"{split}: {line}")
    leaks, problems = result.leaks, result.problems
    for a, b, distance in leaks[:20]:
        typer.secho(
            f"warning: near-duplicate images across train and val: {a} ~ {b} "
            f"(dHash distance {distance})",
            fg=typer.colors.YELLOW,
            err=True,
        )
    typer.echo(f"reports: {out}")
    if problems:
        raise typer.Exit(1)


@command()
def stats(
    config: ConfigOpt,
    set_: SetOpt = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder for stats.json and stats.png.")
    ] = None,
) -> None:
    """Channel mean/std, image sizes, class frequencies and presence, empty-mask share."""
    from podium.data.stats import write_stats_json
    from podium.report.stats_plot import plot_dataset_stats
    from podium.workflows.check import train_stats

    cfg = load_config(config, set_)
    result = train_stats(cfg)
    out = output or Path(cfg.output_dir) / cfg.experiment / "stats"
    write_stats_json(out / "stats.json", result)
    plot_dataset_stats(result, out / "stats.png")
    typer.echo(
        f"mean {[round(m, 4) for m in result['mean']]}  std "
        f"{[round(v, 4) for v in result['std']]}  ({result['num_images']} images)"
    )
    for name, share, images in zip(
        result["class_names"], result["class_pixel_share"], result["class_images"]
    ):
        typer.echo(f"  {name:>16}: {share:8.4%} of pixels, in {images} images")
    typer.echo(
        f"empty masks: {result['empty_share']:.1%}; wrote {out / 'stats.json'} "
        f"(use it with data.stats_file) and {out / 'stats.png'}"
    )


CkptOpt = Annotated[list[Path], typer.Option("--ckpt", help="Checkpoint(s); several = ensemble.")]
TtaOpt = Annotated[str | None, typer.Option(help="none, hflip, vflip, d2 or d4.")]
TileOpt = Annotated[int | None, typer.Option(help="Sliding-window side for large images.")]
OverlapOpt = Annotated[float | None, typer.Option(help="Window overlap fraction.")]
AverageOpt = Annotated[
    bool, typer.Option("--average", help="Average the checkpoints' weights into one model.")
]
WeightsOpt = Annotated[list[float] | None, typer.Option("--weight", help="Ensemble weights.")]


def _inference_setup(config, set_, ckpt, tta, tile, overlap, average, weights, postprocess=None):
    """Load the checkpoint(s) and build the predictor; CLI flags override inference.*."""
    from podium.build.checkpoint import inference_options, load_members
    from podium.inference.pipeline import Predictor

    cfg = load_config(config, set_) if config else None
    cfg, modules = load_members(ckpt, cfg, average)
    flags = {"tta": tta, "tile": tile, "overlap": overlap, "postprocess": postprocess}
    for key, value in flags.items():
        if value is not None:
            setattr(cfg.inference, key, value)
    return cfg, Predictor(modules, inference_options(cfg), weights)


@command()
def evaluate(
    ckpt: CkptOpt,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    output: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    tta: TtaOpt = None,
    tile: TileOpt = None,
    overlap: OverlapOpt = None,
    average: AverageOpt = False,
    weight: WeightsOpt = None,
    postprocess: Annotated[
        Path | None, typer.Option(help="Sigmoid heads: post-processing YAML to score with.")
    ] = None,
) -> None:
    """Per-class IoU/Dice, mIoU, pixel accuracy, confusion matrix, best/worst grid, ms/image
    (sigmoid heads: Kaggle Dice, pixel and image-level scores per class)."""
    from podium.workflows.evaluate import evaluate as run_evaluation

    cfg, predictor = _inference_setup(
        config, set_, ckpt, tta, tile, overlap, average, weight, postprocess
    )
    out = output or ckpt[0].resolve().parent.parent / "evaluation"
    result = run_evaluation(cfg, predictor, out)
    from podium.workflows.evaluate_multilabel import MultilabelEvaluation

    if isinstance(result, MultilabelEvaluation):
        _echo_multilabel(result, out)
        return
    for name, values in result.per_class.items():
        typer.echo(f"  {name:>16}: IoU {values['iou']:.4f}  Dice {values['dice']:.4f}")
    typer.echo(
        f"mIoU {result.miou:.4f}  mDice {result.mdice:.4f}  pixel accuracy "
        f"{result.pixel_accuracy:.4f}  {result.ms_per_image:.2f} ms/image ({result.images} images)"
    )
    typer.echo(f"report: {out}")


def _echo_multilabel(result, out: Path) -> None:
    for name, v in result.per_class.items():
        typer.echo(
            f"  {name:>16}: Kaggle Dice {v['kaggle_dice']:.4f}  pixel Dice {v['dice']:.4f}  "
            f"image precision {v['image_precision']:.3f} recall {v['image_recall']:.3f}"
        )
    rules = result.postprocess or "threshold 0.5"
    typer.echo(
        f"Kaggle Dice {result.kaggle_dice:.4f}  mDice {result.mdice:.4f}  mIoU "
        f"{result.miou:.4f}  {result.ms_per_image:.2f} ms/image ({result.images} images, {rules})"
    )
    typer.echo(f"report: {out}")


@command()
def predict(
    ckpt: CkptOpt,
    input: Annotated[Path, typer.Option("--input", help="Folder of images.")],
    output: Annotated[Path, typer.Option(help="Output folder.")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    tta: TtaOpt = None,
    tile: TileOpt = None,
    overlap: OverlapOpt = None,
    average: AverageOpt = False,
    weight: WeightsOpt = None,
    postprocess: Annotated[Path | None, typer.Option(help="Thresholds/min-area YAML.")] = None,
    overlays: Annotated[bool, typer.Option(help="Also write overlays.")] = True,
    save_probs: Annotated[bool, typer.Option(help="Also write float16 NPZ probabilities.")] = False,
    submission: Annotated[
        Path | None, typer.Option(help="Also write a Kaggle RLE submission CSV (sigmoid head).")
    ] = None,
    inputs: Annotated[
        Path | None, typer.Option(help="CSV of the model's extra inputs (model.inputs).")
    ] = None,
) -> None:
    """Predict a folder: PNG masks, overlays, optional NPZ probabilities, timings CSV."""
    from podium.workflows.predict import predict_folder

    cfg, predictor = _inference_setup(
        config, set_, ckpt, tta, tile, overlap, average, weight, postprocess
    )
    summary = predict_folder(
        cfg, predictor, input, output, overlays, save_probs, submission, inputs
    )
    typer.echo(
        f"wrote the outputs of {summary.written} images to {output} in {summary.seconds:.1f} s; "
        f"skipped {len(summary.skipped)}"
    )
    for line in summary.skipped:
        typer.secho(f"  skipped {line}", fg=typer.colors.YELLOW, err=True)


@command()
def tune(
    ckpt: CkptOpt,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    output: Annotated[Path | None, typer.Option(help="Post-processing YAML to write.")] = None,
    tta: TtaOpt = None,
    average: AverageOpt = False,
    weight: WeightsOpt = None,
    image_rule: Annotated[
        bool, typer.Option(help="Also search the image-level max-probability threshold.")
    ] = False,
) -> None:
    """Per-class threshold, min component area and image-level rules (a class head's threshold
    when the model has one) maximizing Kaggle Dice on validation → YAML."""
    from podium.workflows.kaggle import tune_on_validation

    cfg, predictor = _inference_setup(config, set_, ckpt, tta, None, None, average, weight)
    out = output or ckpt[0].resolve().parent.parent / "postprocess.yaml"
    pp, report = tune_on_validation(cfg, predictor, out, image_rule)
    for pick in report["classes"]:
        rules = "".join(
            f"  {key.replace('_', ' ')} {pick[key]:.2f}"
            for key in ("image_threshold", "class_threshold")
            if pick[key] is not None
        )
        typer.echo(
            f"  class {pick['class_id']}: threshold {pick['threshold']:.2f}  min area "
            f"{pick['min_area']}{rules}  Dice {pick['dice']:.4f}"
        )
    typer.echo(
        f"Kaggle Dice {report['score']:.4f} (threshold 0.5 alone: {report['baseline']:.4f})"
        f"; wrote {out} — use it with predict --postprocess or inference.postprocess"
    )


@command("pseudo-label")
def pseudo_label(
    ckpt: CkptOpt,
    input: Annotated[Path, typer.Option("--input", help="Folder of unlabelled images.")],
    output: Annotated[Path, typer.Option(help="RLE CSV of the kept pseudo-labels.")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: SetOpt = None,
    tta: TtaOpt = None,
    confidence: Annotated[float, typer.Option(help="Pixel confidence max(p, 1-p).")] = 0.8,
    min_confident_share: Annotated[
        float, typer.Option(help="Keep an image if this share of pixels is confident.")
    ] = 0.99,
) -> None:
    """An ensemble's confident predictions on unlabelled images → pseudo-label CSV."""
    from podium.workflows.kaggle import pseudo_label_folder

    cfg, predictor = _inference_setup(config, set_, ckpt, tta, None, None, False, None)
    kept, seen, skipped = pseudo_label_folder(
        cfg, predictor, input, output, confidence, min_confident_share
    )
    typer.echo(
        f"kept {kept} of {seen} images as pseudo-labels in {output}; skipped "
        f"{len(skipped)} unreadable. Train with data.pseudo: {{images: {input}, csv: "
        f"{output}}}"
    )


@command("lr-sweep")
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
    from podium.workflows.lr_sweep import lr_sweep as sweep

    cfg = load_config(config, set_)
    out = output or Path(cfg.output_dir) / cfg.experiment / "lr_sweep"
    points, suggestion = sweep(cfg, out, lr_min, lr_max, num, steps, val_batches)
    for p in points:
        typer.echo(f"  lr {p.lr:.2e}: val loss {p.val_loss:.4f}  train loss {p.train_loss:.4f}")
    typer.echo(
        f"suggested lr {suggestion:.3g} (validation loss falls fastest); plot: "
        f"{out / 'lr_sweep.png'}"
    )


@command()
def demo(
    output_dir: Annotated[Path, typer.Option(help="Where runs go.")] = Path("runs"),
    cache: Annotated[Path | None, typer.Option(help="Dataset cache folder.")] = None,
    set_: SetOpt = None,
) -> None:
    """Build the bundled Blue Marble dataset, then train, evaluate and predict on it."""
    from podium.workflows.demo import run_demo

    run_demo(output_dir, cache, set_ or [])


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
