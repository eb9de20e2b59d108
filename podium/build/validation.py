"""The validation pass as the config asks for it: which samples, which checks, what policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from podium.build.data import mask_head, mask_reader, split_samples
from podium.config import RleCsvData
from podium.data.errors import DataError
from podium.data.formats import Sample, list_images
from podium.data.label_checks import add_rle_label_problems
from podium.data.rle_csv import read_rle_csv
from podium.data.validation import (
    ValidationReport,
    apply_policy,
    validate_samples,
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
    if samples is not None:
        samples = list(samples)
    else:
        samples = pseudo_samples(config) if split == "pseudo" else split_samples(config, split)
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
    pseudo = _pseudo(config)
    try:
        labels = read_rle_csv(pseudo.csv, num_classes=mask_head(config).classes)
    except (DataError, OSError, UnicodeDecodeError):
        return []
    return [Sample(Path(i).stem, Path(pseudo.images) / i) for i in sorted(labels)]


def _pseudo(config: Any) -> Any:
    pseudo = getattr(config.data, "pseudo", None)
    if pseudo is None:
        raise ValueError("the config has no data.pseudo section (rle_csv data only)")
    return pseudo


def split_report(
    config: Any, samples: list[Sample], cache_path: Path | None, split: str = "train"
) -> ValidationReport:
    """Every image (and mask file) of the samples decoded; rle_csv data adds its CSV's checks.

    split 'pseudo': the samples are data.pseudo's images, checked against data.pseudo.csv.
    """
    has_masks = any(s.mask is not None for s in samples)
    reader = mask_reader(config) if has_masks else None
    report = validate_samples(samples, config.model.in_channels, reader, cache_path)
    data = config.data
    if split == "pseudo":
        data = _pseudo(config)
    elif not isinstance(data, RleCsvData):
        return report
    known = {path.name for path in list_images(data.images).values()}
    add_rle_label_problems(report, samples, data.csv, mask_head(config).classes, known)
    return report
