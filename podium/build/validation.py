"""The validation pass as the config asks for it: which samples, which checks, what policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from podium.build.data import data_spec, split_samples
from podium.data.errors import DataError
from podium.data.formats import Sample
from podium.data.validation import (
    ValidationReport,
    apply_policy,
    write_validation_report,
)

__all__ = ["pseudo_samples", "split_report", "validated_samples"]


def validated_samples(
    config: Any,
    split: str,
    policy: Literal["error", "skip", "off"],
    cache_dir: Path | None,
    samples: list[Sample] | None = None,
) -> list[Sample]:
    """The split's samples (or `samples`, e.g. a fold) after validation under `policy`.

    split: 'train', 'val' or 'pseudo' (data.pseudo's images and CSV). Writes
    cache_dir/validation-<split>.json (cache) and validation-<split>.txt (report).
    """
    samples = list(samples) if samples is not None else split_samples(config, split)
    if policy == "off":
        return samples
    cache = Path(cache_dir) / f"validation-{split}.json" if cache_dir is not None else None
    report = split_report(config, samples, cache, split)
    report_path = None
    if cache_dir is not None and not report.ok:
        report_path = write_validation_report(report, Path(cache_dir) / f"validation-{split}.txt")
    kept = apply_policy(samples, report, policy, report_path)
    if len(kept) < len(samples):
        where = f"; report: {report_path}" if report_path is not None else ""
        if not kept:  # a split of nothing would train or validate on nothing, silently
            raise DataError(
                f"data validation ({split}): every sample has problems ({report.summary()}), "
                f"none is left after skipping{where}. Fix the files (or drop data.pseudo)."
            )
        print(f"data validation ({split}): skipping {report.summary()}{where}")
    return kept


def pseudo_samples(config: Any) -> list[Sample]:
    """data.pseudo's pool as mask-less Samples: the images its CSV names, as training mixes them.

    [] when the CSV cannot be parsed; `split_report(..., "pseudo")` then reports why.
    """
    if "pseudo" not in config.data.splits():
        raise ValueError(f"the config has no data.pseudo section (format {config.data.format!r})")
    return split_samples(config, "pseudo")


def split_report(
    config: Any, samples: list[Sample], cache_path: Path | None, split: str = "train"
) -> ValidationReport:
    """Every image and label of the samples decoded by the data format's checks (cached).

    split 'pseudo': the samples are data.pseudo's images, checked against data.pseudo.csv.
    """
    return config.data.check(split, samples, data_spec(config), cache_path)
