"""Per-epoch metrics history kept in the checkpoint, written as CSV and a curves PNG."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from podium.io import atomic_write_text
from podium.report.curves import plot_curves

__all__ = ["MetricsHistory", "read_history"]


class MetricsHistory(pl.Callback):
    """One row per epoch. Saved in the checkpoint so a resumed run continues the same history."""

    def __init__(self, run_dir: Path, metric_keys: list[str] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.metric_keys = metric_keys
        self.rows: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._pending = {k: _scalar(v) for k, v in trainer.callback_metrics.items()}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Train-epoch end comes after validation in Lightning 2.x, so both are present here.
        row = {"epoch": float(trainer.current_epoch)}
        row.update(getattr(self, "_pending", {}))
        row.update({k: _scalar(v) for k, v in trainer.callback_metrics.items()})
        # "train/loss" already holds the epoch mean; the _step/_epoch twins would repeat it.
        row = {k: v for k, v in row.items() if not k.endswith(("_step", "_epoch"))}
        self.rows.append(row)
        self._pending = {}
        if trainer.is_global_zero:
            self.write()

    def write(self) -> None:
        keys = sorted({k for row in self.rows for k in row}, key=lambda k: (k != "epoch", k))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.run_dir / "metrics.csv", buffer.getvalue())
        plot_curves(self.rows, self.run_dir / "curves.png", self.metric_keys)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])


def _scalar(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [
            {k: float(v) if v != "" else math.nan for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]
