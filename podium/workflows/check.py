"""`podium check`: decode every image and label of every split, report, look for leaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from podium.build import data_spec, split_samples
from podium.build.validation import split_report
from podium.config import Config
from podium.data.duplicates import near_duplicates_across
from podium.data.validation import ValidationReport, write_validation_report

__all__ = ["CheckResult", "run_check", "train_stats"]


@dataclass
class CheckResult:
    summaries: dict[str, str] = field(default_factory=dict)  # split → its summary line
    problems: int = 0
    leaks: list[tuple[str, str, int]] = field(default_factory=list)  # train ~ val pairs


def run_check(config: Config, out: Path) -> CheckResult:
    """Check every split (mask files, dense targets, RLE rows against each image's size);
    write validation-<split>.txt/json under out; near-duplicates across train and val."""
    result, good, shared = CheckResult(), {}, {}
    for split in config.data.splits():
        samples = split_samples(config, split)
        report = split_report(config, samples, out / f"validation-{split}.json", split)
        write_validation_report(report, out / f"validation-{split}.txt")
        result.problems += len(report.problems)
        result.summaries[split] = _summary(report, samples, split, shared)
        bad = set(report.by_sample)  # image paths of the samples with problems
        good[split] = {s.name: s.image for s in samples if str(s.image) not in bad}
    distance = config.data.folds.duplicate_distance if config.data.folds else 4
    result.leaks = near_duplicates_across(good["train"], good["val"], distance)
    return result


def _summary(report: ValidationReport, samples, split: str, shared: dict) -> str:
    """The split's summary line. A problem of no single sample (a malformed CSV, which every
    split reading that CSV reports) is counted by the first split that prints it only.

    shared: such problems already printed → their split; updated here.
    """
    stuck = report.unattached(samples)
    repeated = [p for p in stuck if p in shared]
    shared.update((p, split) for p in stuck if p not in shared)
    if not repeated:
        return report.summary()
    rest = ValidationReport(report.checked)
    for key, found in report.by_sample.items():
        if left := [p for p in found if p not in repeated]:
            rest.by_sample[key] = left
    files = ", ".join(dict.fromkeys(p.file for p in repeated))
    where = ", ".join(dict.fromkeys(shared[p] for p in repeated))
    return f"{rest.summary()}; the {len(repeated)} problem(s) of {files} are listed under {where}"


def train_stats(config: Config) -> dict:
    """Stats of the train split, read by the data format (mask files or RLE rows decoded)."""
    return config.data.stats(split_samples(config, "train"), data_spec(config))
