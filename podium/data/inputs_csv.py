"""Extra per-image model inputs from a CSV: a `name` column (image stem), one column per value.

For `model.inputs: {gsd: 1}` the CSV has a `gsd` column; for n > 1 values `gsd_0..gsd_{n-1}`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Mapping
from pathlib import Path

from podium.data.errors import DataError

__all__ = ["input_columns", "read_inputs_csv"]

_SHOW = 10  # how many offending names an error lists


def input_columns(name: str, count: int) -> list[str]:
    """The CSV columns of one input: [name] for one value, name_0..name_{count-1} for more."""
    return [name] if count == 1 else [f"{name}_{i}" for i in range(count)]


def read_inputs_csv(
    path: Path, declared: Mapping[str, int], stems: Collection[str]
) -> dict[str, dict[str, tuple[float, ...]]]:
    """stem → {input name: its values}; every stem needs a row, every input its columns."""
    if not path.is_file():
        raise DataError(f"inputs CSV {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        _check_columns(path, header, declared)
        rows: dict[str, dict[str, tuple[float, ...]]] = {}
        for line, row in enumerate(reader, start=2):
            stem = (row.get("name") or "").strip()
            if not stem:
                raise DataError(f"inputs CSV {path} line {line}: empty name")
            if stem in rows:
                raise DataError(f"inputs CSV {path} line {line}: duplicate name {stem!r}")
            rows[stem] = {
                name: tuple(_number(row, column, path, line) for column in input_columns(name, n))
                for name, n in declared.items()
            }
    missing = sorted(set(stems) - set(rows))
    if missing:
        raise DataError(
            f"inputs CSV {path} has no row for {len(missing)} image(s): "
            f"{', '.join(missing[:_SHOW])}"
        )
    return {stem: rows[stem] for stem in stems}


def _check_columns(path: Path, header: list[str], declared: Mapping[str, int]) -> None:
    """The name column and every declared input's columns must be in the header."""
    needed = ["name"] + [c for name, n in declared.items() for c in input_columns(name, n)]
    missing = [column for column in needed if column not in header]
    if missing:
        raise DataError(
            f"inputs CSV {path} lacks the column(s) {', '.join(missing)} (model.inputs declares "
            f"{dict(declared)}; found {', '.join(header) or 'no header'})"
        )


def _number(row: dict[str, str | None], column: str, path: Path, line: int) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(
            f"inputs CSV {path} line {line} ({row.get('name')!r}): {column} = {text!r} is not "
            "a finite number"
        )
    return value
