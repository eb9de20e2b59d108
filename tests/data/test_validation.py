"""The validation pass against a corpus of broken inputs, its cache, policies and a skip-run."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import podium.data.validation as validation
from podium.build.validation import validated_samples
from podium.config import ConfigError, load_config
from podium.data.errors import DataError
from podium.data.formats import Sample, folder_samples
from podium.data.images import read_mask
from podium.data.label_checks import (
    add_rle_label_problems,
    check_box_inside,
    check_finite_raster,
    check_rle,
    rle_csv_problems,
)
from podium.data.validation import (
    KINDS,
    Problem,
    apply_policy,
    header_shape,
    validate_samples,
    write_validation_report,
)

SIZE = 32
PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
INDEX_READER = functools.partial(read_mask, num_classes=3, ignore_index=255)
PALETTE_READER = functools.partial(read_mask, num_classes=3, ignore_index=255, palette=PALETTE)


def _rgb(seed: int = 0, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _ids(size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    mask = np.zeros(size, dtype=np.uint8)
    mask[4:12, 4:12] = 1
    mask[16:24, 8:20] = 2
    return mask


def _encode(array: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, array)
    assert ok
    return buffer.tobytes()


def _save_mask(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _pair(root: Path, stem: str, image: bytes, ext: str = ".png", mask=None) -> Sample:
    """Write an image (raw bytes) and, unless mask is False, a mask (default: a good one)."""
    image_path = root / "images" / f"{stem}{ext}"
    image_path.write_bytes(image)
    mask_path = root / "masks" / f"{stem}.png"
    if mask is not False:
        _save_mask(mask_path, _ids() if mask is None else mask)
    return Sample(stem, image_path, mask_path)


def _build_corpus(root: Path) -> tuple[list[Sample], list[Sample]]:
    """Index-mask samples and palette-mask samples, one problem (or none) each."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    png, jpg = _encode(_rgb(), ".png"), _encode(_rgb(), ".jpg")
    wide = _ids((SIZE, SIZE + 8))
    bad_ids = _ids()
    bad_ids[0, 0] = 7
    ignore = _ids()
    ignore[:, :3] = 255
    samples = [
        _pair(root, "good", png),
        _pair(root, "truncated_jpeg", jpg[: len(jpg) // 2], ".jpg"),
        _pair(root, "truncated_png", png[: len(png) // 2]),
        _pair(root, "zero_png", b""),
        _pair(root, "zero_jpeg", b"", ".jpg"),
        _pair(root, "random_png", np.random.default_rng(0).bytes(500)),
        _pair(root, "text_jpg", b"this is not a picture\n", ".jpg"),
        _pair(root, "sixteen_bit", _encode(_rgb().astype(np.uint16) * 257, ".png")),
        _pair(root, "rgba", _encode(np.dstack([_rgb(), _rgb(1)[..., :1]]), ".png")),
        _pair(root, "mask_size", png, mask=wide),
        _pair(root, "class_id", png, mask=bad_ids),
        _pair(root, "missing_mask", png, mask=False),
        _pair(root, "rgb_mask", png, mask=np.dstack([_ids()] * 3)),
        _pair(root, "zero_mask", png, mask=False),
        _pair(root, "truncated_mask", png, mask=False),
        # Not problems: PNG bytes named .jpg (decoded by content), ignore pixels, grey image,
        # bytes after a JPEG's end marker (some cameras append data).
        _pair(root, "png_named_jpg", png, ".jpg"),
        _pair(root, "ignore_pixels", png, mask=ignore),
        _pair(root, "grey_image", _encode(_rgb()[..., 0], ".png")),
        _pair(root, "jpeg_trailer", jpg + b"\x00" * 32 + b"EXTRA", ".jpg"),
    ]
    (root / "masks" / "zero_mask.png").write_bytes(b"")
    whole = (root / "masks" / "good.png").read_bytes()
    (root / "masks" / "truncated_mask.png").write_bytes(whole[: len(whole) // 2])
    samples.append(Sample("missing_image", root / "images" / "missing_image.png"))
    samples.append(_exif_rotated(root))
    # A second sample with the name of the first ("good"): names key predictions and folds.
    samples.append(Sample("good", _pair(root, "good_copy", png).image, root / "masks/good.png"))
    palette = [
        _pair(root, "palette_ok", png, mask=np.array(PALETTE, np.uint8)[_ids()]),
        _pair(root, "palette_colour", png, mask=_unknown_colour()),
    ]
    return samples, palette


def _exif_rotated(root: Path) -> Sample:
    """A JPEG tagged 'rotate 90°': OpenCV reads it 40 wide × 80 high; its mask is 80 × 40."""
    image = Image.fromarray(_rgb(2, (40, 80)))
    exif = image.getexif()
    exif[0x0112] = 6
    path = root / "images" / "exif_rotated.jpg"
    image.save(path, exif=exif.tobytes())
    mask = _save_mask(root / "masks" / "exif_rotated.png", np.zeros((40, 80), np.uint8))
    return Sample("exif_rotated", path, mask)


def _unknown_colour() -> np.ndarray:
    mask = np.array(PALETTE, np.uint8)[_ids()]
    mask[5, 5] = (1, 2, 3)
    return mask


# stem → expected kind (None: must not be reported).
CASES = {
    "truncated_jpeg": "truncated_image",
    "truncated_png": "corrupt_image",
    "zero_png": "empty_file",
    "zero_jpeg": "empty_file",
    "random_png": "not_an_image",
    "text_jpg": "not_an_image",
    "sixteen_bit": "bit_depth",
    "rgba": "channels",
    "mask_size": "mask_size",
    "class_id": "mask_class_ids",
    "missing_mask": "missing_mask",
    "rgb_mask": "mask_channels",
    "zero_mask": "unreadable_mask",
    "truncated_mask": "unreadable_mask",
    "missing_image": "missing_image",
    "exif_rotated": "mask_size",
    "good_copy": "duplicate_name",
    "palette_colour": "mask_palette",
    "good": None,
    "png_named_jpg": None,
    "ignore_pixels": None,
    "grey_image": None,
    "jpeg_trailer": None,
    "palette_ok": None,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    index, palette = _build_corpus(root)
    report = validate_samples(index, 3, INDEX_READER, root / "cache.json")
    palette_report = validate_samples(palette, 3, PALETTE_READER, None)
    problems = report.problems + palette_report.problems
    return {Path(p.file).stem: p for p in problems}, report


@pytest.mark.parametrize("stem", sorted(CASES))
def test_corpus_case_is_reported_with_its_kind(corpus, stem):
    by_stem, _ = corpus
    expected = CASES[stem]
    if expected is None:
        assert stem not in by_stem, by_stem.get(stem)
        return
    problem = by_stem[stem]
    assert problem.kind == expected, problem
    assert stem in problem.file and stem in problem.message  # the message names the file
    assert expected in KINDS


def test_report_counts_kinds_and_lists_files(corpus, tmp_path):
    by_stem, report = corpus
    assert "EXIF orientation" in by_stem["exif_rotated"].message
    counts = report.counts()
    assert counts["empty_file"] == 2 and counts["not_an_image"] == 2
    assert counts["unreadable_mask"] == 2 and counts["mask_size"] == 2
    assert sum(counts.values()) == len(report.problems) == 17
    assert all(isinstance(f, str) for f in report.files())
    text = write_validation_report(report, tmp_path / "report.txt").read_text()
    assert "truncated_image" in text and "truncated_jpeg.jpg" in text
    data = json.loads(write_validation_report(report, tmp_path / "report.json").read_text())
    assert data["counts"] == counts and len(data["problems"]) == 17


def test_rle_problems():
    shape = (4, 5)  # 20 pixels
    assert check_rle("1 3 10 2", shape, "a.csv") is None
    assert check_rle("", shape, "a.csv") is None  # an empty mask
    past_end = check_rle("18 5", shape, "a.csv", "ImageId='x'")
    assert past_end.kind == "rle" and "past the last pixel" in past_end.message
    assert "ImageId='x'" in past_end.message
    assert "odd number" in check_rle("1 3 7", shape, "a.csv").message
    assert "'x1'" in check_rle("1 3 x1 2", shape, "a.csv").message


def test_rle_csv_problems_lists_every_bad_row(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("ImageId,ClassId,EncodedPixels\na.jpg,1,1 3\nb.jpg,1,18 5\nc.jpg,2,1 2 3\n")
    problems = rle_csv_problems(path, (4, 5), num_classes=4)
    assert [p.kind for p in problems] == ["rle", "rle"]
    assert "b.jpg" in problems[0].message and "c.jpg" in problems[1].message
    path.write_text("Image,Class\n")
    assert rle_csv_problems(path, (4, 5))[0].kind == "rle_csv"


def test_raster_and_box_checks(tmp_path):
    np.save(tmp_path / "fine.npy", np.ones((4, 4), np.float32))
    np.save(tmp_path / "ints.npy", np.ones((4, 4), np.int32))
    nan = np.ones((4, 4), np.float32)
    nan[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "inf.npy", np.full((2, 2), np.inf))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    assert check_finite_raster(tmp_path / "fine.npy") is None
    assert check_finite_raster(tmp_path / "ints.npy") is None
    problem = check_finite_raster(tmp_path / "nan.npy")
    assert problem.kind == "nonfinite_raster" and "1 NaN" in problem.message
    assert "4 inf" in check_finite_raster(tmp_path / "inf.npy").message
    assert check_finite_raster(tmp_path / "junk.npy").kind == "unreadable_raster"
    assert check_box_inside((0, 0, 10, 10), 10, 10) is None
    assert check_box_inside(np.array([1.0, 2.0, 3.0, 4.0], np.float32), 10, 10) is None
    assert check_box_inside((5, 5, 11, 8), 10, 10, "a.png").kind == "box_outside"
    assert check_box_inside((-1, 0, 4, 4), 10, 10).kind == "box_outside"
    assert check_box_inside((5, 5, 2, 8), 10, 10).kind == "box_invalid"
    assert check_box_inside((0, 0, float("nan"), 4), 10, 10).kind == "box_invalid"


def test_config_problems_name_the_file_and_key(tmp_path, tiny_config):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n  heads: {")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(broken)
    tiny_config["data"]["batch_szie"] = 4
    with pytest.raises(ConfigError, match="batch_szie"):
        load_config(raw=tiny_config)


def test_folder_pairing_problems_name_the_files(tmp_path):
    for name in ("images", "masks"):
        (tmp_path / name).mkdir()
    for stem in ("a", "b"):
        _pair(tmp_path, stem, _encode(_rgb(), ".png"))
    _save_mask(tmp_path / "masks" / "orphan.png", _ids())
    with pytest.raises(DataError, match="orphan"):
        folder_samples(tmp_path / "images", tmp_path / "masks")
    (tmp_path / "masks" / "orphan.png").unlink()
    (tmp_path / "images" / "a.jpg").write_bytes(_encode(_rgb(), ".jpg"))
    with pytest.raises(DataError, match=r"a\.jpg"):
        folder_samples(tmp_path / "images", tmp_path / "masks")


def test_cache_decodes_only_changed_files(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    samples = [_pair(tmp_path, f"s{i}", _encode(_rgb(i), ".png")) for i in range(4)]
    samples.append(_pair(tmp_path, "bad", b"junk"))
    decoded = []
    real = validation._decode_image
    monkeypatch.setattr(validation, "_decode_image", lambda p: decoded.append(p) or real(p))
    cache = tmp_path / "cache" / "validation.json"
    first = validate_samples(samples, 3, INDEX_READER, cache)
    assert len(decoded) == 5 and first.decoded == 5 and cache.is_file()
    decoded.clear()
    second = validate_samples(samples, 3, INDEX_READER, cache)
    assert decoded == [] and second.decoded == 0
    assert second.problems == first.problems  # cached problems come back as they were
    stat = samples[1].mask.stat()
    os.utime(samples[1].mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    validate_samples(samples, 3, INDEX_READER, cache)
    assert decoded == [samples[1].image]  # a changed mask re-checks its sample
    decoded.clear()
    validate_samples(samples, 1, INDEX_READER, cache)  # other settings: everything again
    assert len(decoded) == 5


def test_policies(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    good = [_pair(tmp_path, f"ok{i}", _encode(_rgb(i), ".png")) for i in range(3)]
    bad = [_pair(tmp_path, "zero", b""), _pair(tmp_path, "junk", b"junk")]
    samples = [good[0], bad[0], good[1], bad[1], good[2]]
    report = validate_samples(samples, 3, INDEX_READER, None)
    assert apply_policy(samples, report, "skip") == good
    with pytest.raises(DataError) as error:
        apply_policy(samples, report, "error")
    message = str(error.value)
    assert "2 of 5 samples" in message and "empty_file: 1" in message
    assert "zero.png" in message and "junk.png" in message and "skip" in message
    clean = validate_samples(good, 3, INDEX_READER, None)
    assert clean.ok and apply_policy(good, clean, "error") == good


def test_skip_policy_trains_on_the_good_samples(tiny_data, tmp_path, capsys):
    from conftest import tiny_config_dict

    from podium.workflows.fit import train

    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    train_dir = root / "train"
    (train_dir / "images/sample_0001.png").write_bytes(np.random.default_rng(1).bytes(300))
    _save_mask(train_dir / "masks/sample_0002.png", np.zeros((64, 48), np.uint8))
    mask = np.array(Image.open(train_dir / "masks/sample_0003.png"))
    mask[0, 0] = 9
    _save_mask(train_dir / "masks/sample_0003.png", mask)
    image = train_dir / "images/sample_0004.png"
    jpg = _encode(cv2.imread(str(image)), ".jpg")
    image.unlink()
    (train_dir / "images/sample_0004.jpg").write_bytes(jpg[: len(jpg) // 2])
    config = load_config(raw=tiny_config_dict(root, tmp_path / "runs", max_epochs=1))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="4 of 12 samples"):
        validated_samples(config, "train", "error", cache)
    kept = validated_samples(config, "train", "skip", cache)
    assert "skipping 4 of 12 samples" in capsys.readouterr().out
    bad = {"sample_0001", "sample_0002", "sample_0003", "sample_0004"}
    assert sorted(s.name for s in kept) == sorted(
        f"sample_{i:04d}" for i in range(12) if f"sample_{i:04d}" not in bad
    )
    assert (cache / "validation-train.txt").is_file()
    val = validated_samples(config, "val", "skip", cache)
    assert len(val) == 6
    run_dir = train(config, samples=(kept, val))
    assert (run_dir / "checkpoints/last.ckpt").is_file()


def test_problem_is_plain_data():
    problem = Problem("a.png", "empty_file", "a.png is empty")
    assert Problem(*json.loads(json.dumps(list(problem.__dict__.values())))) == problem


# --- rle_csv: images decoded, every RLE string checked against its own image's size -----------


def _rle_folder(root: Path) -> tuple[list[Sample], Path]:
    """big.png 8×10, small.png 4×5, broken.png (PNG bytes that do not decode) + train.csv."""
    folder = root / "images"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "big.png"), np.full((8, 10), 90, np.uint8))
    cv2.imwrite(str(folder / "small.png"), np.full((4, 5), 90, np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(64))
    csv = root / "train.csv"
    rows = [
        "big.png,1,70 5",  # fine for 80 pixels; would run past the end of small.png
        "small.png,1,1 3",
        "small.png,2,18 5",  # pixels 18..22 of 20
        "broken.png,1,1 2",
    ]
    csv.write_text("ImageId,ClassId,EncodedPixels\n" + "\n".join(rows) + "\n")
    samples = [Sample(p.stem, p) for p in sorted(folder.iterdir())]
    return samples, csv


def test_rle_label_problems_use_each_image_size_and_name_image_and_class(tmp_path):
    samples, csv = _rle_folder(tmp_path)
    known = {s.image.name for s in samples}
    report = validate_samples(samples, 1, None, None)
    add_rle_label_problems(report, samples, csv, 4, known)
    by_name = {Path(key).name: [p.kind for p in found] for key, found in report.by_sample.items()}
    assert by_name == {"small.png": ["rle"], "broken.png": ["corrupt_image"]}
    (problem,) = report.by_sample[str(tmp_path / "images/small.png")]
    assert "ImageId='small.png', ClassId=2" in problem.message
    assert "past the last pixel" in problem.message and problem.file == str(csv)


def test_rle_csv_structure_error_is_a_problem_no_skip_drops(tmp_path):
    samples, csv = _rle_folder(tmp_path)
    csv.write_text(csv.read_text() + "ghost.png,1,1 2\n")
    report = validate_samples(samples, 1, None, None)
    add_rle_label_problems(report, samples, csv, 4, {s.image.name for s in samples})
    (problem,) = report.by_sample[str(csv)]
    assert problem.kind == "rle_csv" and "unknown ImageId 'ghost.png'" in problem.message
    assert "row 6" in problem.message
    with pytest.raises(DataError, match="skipping cannot drop"):
        apply_policy(samples, report, "skip")


def test_header_shape_is_height_width_as_read(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((3, 7), np.uint8))
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert header_shape(tmp_path / "a.png") == (3, 7)
    assert header_shape(tmp_path / "b.png") is None


def _rle_config(images: Path, csv: Path, out: Path):
    return load_config(
        raw={
            "output_dir": str(out),
            "data": {
                "format": "rle_csv",
                "images": str(images),
                "csv": str(csv),
                "val_fraction": 0.4,
                "classes": ["a", "b", "c", "d"],
                "num_workers": 0,
            },
            "model": {"in_channels": 1},
            "heads": {"mask": {"classes": 4, "activation": "sigmoid"}},
        }
    )


def test_validated_samples_skip_drops_rle_images_and_their_ids(tmp_path, capsys):
    from podium.build import dataset_for

    _, csv = _rle_folder(tmp_path)
    config = _rle_config(tmp_path / "images", csv, tmp_path / "runs")
    kept = {"train": validated_samples(config, "train", "skip", tmp_path / "cache")}
    assert [s.name for s in kept["train"]] == ["big"]
    assert "skipping 1 of 2" in capsys.readouterr().out
    # The one val image is bad: skipping it would leave validation with nothing.
    with pytest.raises(DataError, match=r"\(val\): every sample has problems.*none is left"):
        validated_samples(config, "val", "skip", tmp_path / "cache")
    for split, good in kept.items():
        dataset = dataset_for(config, split, samples=good, augment=False)
        assert dataset.ids == [s.image.name for s in good]
    messages = []
    for split in ("train", "val"):
        with pytest.raises(DataError) as error:
            validated_samples(config, split, "error", tmp_path / "cache")
        messages.append(str(error.value))
    assert any("ImageId='small.png', ClassId=2" in m for m in messages)
    assert any("broken.png [corrupt_image]" in m for m in messages)


def test_skip_refuses_a_split_with_no_good_sample_left(tiny_data, tmp_path):
    from conftest import tiny_config_dict

    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    for image in (root / "val/images").iterdir():
        image.write_bytes(b"junk")
    config = load_config(raw=tiny_config_dict(root, tmp_path / "runs", max_epochs=1))
    # Skipping all of them would validate on nothing: every epoch's val metrics silently absent.
    with pytest.raises(DataError, match=r"\(val\): every sample has problems.*none is left"):
        validated_samples(config, "val", "skip", tmp_path / "cache")
