"""Tests for podium.data.rle_csv: Kaggle RLE CSV reading, decoding and atomic writing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from podium.data.errors import DataError
from podium.data.rle import RLEError, rle_encode
from podium.data.rle_csv import (
    HEADER,
    RLECSVError,
    decode_image_masks,
    masks_to_rows,
    read_rle_csv,
    write_rle_csv,
)

SHAPE = (3, 4)  # tiny images keep hand-written RLE strings readable

NEW_LAYOUT = """ImageId,ClassId,EncodedPixels
a.jpg,1,1 3
a.jpg,3,2 4 10 1
b.jpg,2,12 1
c.jpg,4,
"""

OLD_LAYOUT = """ImageId_ClassId,EncodedPixels
a.jpg_1,1 3
a.jpg_3,2 4 10 1
b.jpg_2,12 1
c.jpg_4,
"""

EXPECTED = {
    "a.jpg": {1: "1 3", 3: "2 4 10 1"},
    "b.jpg": {2: "12 1"},
    "c.jpg": {4: ""},
}


def write(tmp_path: Path, text: str, name: str = "train.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


# --- reading ---------------------------------------------------------------------------------


def test_both_layouts_parse_to_the_same_structure(tmp_path: Path) -> None:
    new = read_rle_csv(write(tmp_path, NEW_LAYOUT, "new.csv"), num_classes=4)
    old = read_rle_csv(write(tmp_path, OLD_LAYOUT, "old.csv"), num_classes=4)
    assert new == old == EXPECTED


def test_old_layout_image_id_may_contain_underscores(tmp_path: Path) -> None:
    path = write(tmp_path, "ImageId_ClassId,EncodedPixels\nmy_img_07.jpg_2,1 1\n")
    assert read_rle_csv(path) == {"my_img_07.jpg": {2: "1 1"}}


def test_bom_blank_lines_and_whitespace_are_tolerated(tmp_path: Path) -> None:
    text = "ImageId,ClassId,EncodedPixels\r\n a.jpg , 1 , 1 3 \r\n\r\n"
    path = write(tmp_path, text, encoding="utf-8-sig")
    assert read_rle_csv(path) == {"a.jpg": {1: "1 3"}}


def test_read_with_known_images_and_shape(tmp_path: Path) -> None:
    path = write(tmp_path, NEW_LAYOUT)
    out = read_rle_csv(
        path, num_classes=4, image_ids={"a.jpg", "b.jpg", "c.jpg", "d.jpg"}, shape=SHAPE
    )
    assert out == EXPECTED  # d.jpg is known but absent: it simply has no defect


@pytest.mark.parametrize(
    "text",
    [
        "ImageId,EncodedPixels\na.jpg,1 1\n",
        "ImageId,ClassId,EncodedPixels,Extra\na.jpg,1,1 1,x\n",
        "imageid,classid,encodedpixels\na.jpg,1,1 1\n",
        "a.jpg,1,1 1\n",  # no header at all
        "",  # empty file
    ],
)
def test_bad_header(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RLECSVError) as info:
        read_rle_csv(path)
    msg = str(info.value)
    assert str(path) in msg and "row 1" in msg
    assert "'ImageId,ClassId,EncodedPixels'" in msg
    assert "'ImageId_ClassId,EncodedPixels'" in msg


@pytest.mark.parametrize("layout", ["new", "old"])
def test_duplicate_rows(tmp_path: Path, layout: str) -> None:
    if layout == "new":
        text = "ImageId,ClassId,EncodedPixels\na.jpg,1,1 1\nb.jpg,1,\na.jpg,1,2 1\n"
    else:
        text = "ImageId_ClassId,EncodedPixels\na.jpg_1,1 1\nb.jpg_1,\na.jpg_1,2 1\n"
    path = write(tmp_path, text)
    with pytest.raises(
        RLECSVError,
        match=r"row 4 \(1-based, header is row 1\).*duplicate.*"
        r"ImageId='a.jpg', ClassId=1 \(first seen at row 2\)",
    ):
        read_rle_csv(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.jpg,0,", r"ClassId 0 is outside 1..4"),
        ("a.jpg,5,", r"ClassId 5 is outside 1..4"),
        ("a.jpg,-1,", r"ClassId '-1' is not a positive integer"),
        ("a.jpg,x,", r"ClassId 'x' is not a positive integer"),
        ("a.jpg,1.0,", r"ClassId '1.0' is not a positive integer"),
        ("a.jpg,1", r"expected 3 fields, got 2"),
        (",1,1 1", r"empty ImageId"),
        ("zzz.jpg,1,", r"unknown ImageId 'zzz.jpg'"),
    ],
)
def test_row_errors_name_file_and_row(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, f"ImageId,ClassId,EncodedPixels\na.jpg,2,1 1\n{row}\n")
    with pytest.raises(RLECSVError, match=message) as info:
        read_rle_csv(path, num_classes=4, image_ids={"a.jpg"})
    assert f"file {path}, row 3 (1-based, header is row 1)" in str(info.value)


def test_class_ids_unbounded_without_num_classes(tmp_path: Path) -> None:
    path = write(tmp_path, "ImageId,ClassId,EncodedPixels\na.jpg,9,1 1\n")
    assert read_rle_csv(path) == {"a.jpg": {9: "1 1"}}


def test_unknown_ids_allowed_without_image_ids(tmp_path: Path) -> None:
    path = write(tmp_path, NEW_LAYOUT)
    assert read_rle_csv(path, num_classes=4) == EXPECTED


def test_old_layout_without_class_separator(tmp_path: Path) -> None:
    path = write(tmp_path, "ImageId_ClassId,EncodedPixels\na.jpg,1 1\n")
    with pytest.raises(RLECSVError, match=r"row 2 .*has no '_'"):
        read_rle_csv(path)


def test_bad_rle_with_shape_names_file_row_image_class(tmp_path: Path) -> None:
    path = write(tmp_path, "ImageId,ClassId,EncodedPixels\na.jpg,1,1 1\nb.jpg,3,5 2 1 2\n")
    read_rle_csv(path)  # without a shape the strings are not checked
    with pytest.raises(RLEError) as info:
        read_rle_csv(path, shape=SHAPE)
    assert str(info.value) == (
        f"file {path}, row 3 (1-based, header is row 1) (ImageId='b.jpg', ClassId=3): "
        "run 2 (start 1) comes after run 1 (start 5): runs must be sorted by start"
    )


# --- decoding --------------------------------------------------------------------------------


def test_decode_image_masks_channel_order() -> None:
    masks = decode_image_masks({3: "2 4 10 1", 1: "1 3", 2: ""}, SHAPE, num_classes=4)
    assert masks.shape == (4, 3, 4) and masks.dtype == np.uint8
    np.testing.assert_array_equal(masks[0], [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    assert not masks[1].any() and not masks[3].any()
    np.testing.assert_array_equal(masks[2], [[0, 1, 0, 1], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_decode_absent_image_is_all_empty() -> None:
    # Images absent from the CSV have no defect: the caller looks them up with a default.
    masks = decode_image_masks(EXPECTED.get("not-listed.jpg", {}), SHAPE, num_classes=4)
    assert masks.shape == (4, 3, 4) and not masks.any()


def test_decode_image_masks_errors_name_image_and_class() -> None:
    with pytest.raises(RLEError, match=r"^ImageId='a.jpg', ClassId=2: odd number of tokens"):
        decode_image_masks({1: "1 1", 2: "1 2 3"}, SHAPE, 4, image_id="a.jpg")
    with pytest.raises(RLECSVError, match=r"ClassId=5: ClassId is outside 1..4"):
        decode_image_masks({5: "1 1"}, SHAPE, 4, image_id="a.jpg")


# --- writing ---------------------------------------------------------------------------------


def test_masks_to_rows_lists_every_class() -> None:
    masks = np.zeros((4, 3, 4), np.uint8)
    masks[1, 0, 0] = 1
    masks[3] = 1
    assert masks_to_rows("x.jpg", masks) == [
        ("x.jpg", 1, ""),
        ("x.jpg", 2, "1 1"),
        ("x.jpg", 3, ""),
        ("x.jpg", 4, "1 12"),
    ]
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        masks_to_rows("x.jpg", masks[0])


def test_write_read_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = {f"img_{i}.jpg": (rng.random((4, *SHAPE)) < 0.3).astype(np.uint8) for i in range(6)}
    images["img_0.jpg"][:] = 0  # an image with no defect at all
    path = tmp_path / "submission.csv"
    rows = (row for image_id, m in images.items() for row in masks_to_rows(image_id, m))
    assert write_rle_csv(path, rows) == 6 * 4
    text = path.read_text()
    assert text.startswith("ImageId,ClassId,EncodedPixels\n")
    assert "img_0.jpg,1,\n" in text
    table = read_rle_csv(path, num_classes=4, image_ids=images, shape=SHAPE)
    assert set(table) == set(images)
    for image_id, m in images.items():
        assert table[image_id] == {c + 1: rle_encode(m[c]) for c in range(4)}
        np.testing.assert_array_equal(decode_image_masks(table[image_id], SHAPE, 4), m)


def test_write_empty_iterable_writes_header_only(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    assert write_rle_csv(path, []) == 0
    assert path.read_text() == ",".join(HEADER) + "\n"


def test_write_is_streaming(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    seen_temp: list[bool] = []

    def rows() -> Iterator[tuple[str, int, str]]:
        for i in range(3000):
            if i == 2000:  # ~30 kB in: past any write buffer, so bytes must be on disk
                # Mid-iteration: the writer is already writing into a temp file and the target
                # does not exist yet, i.e. rows are consumed as they come, not collected first.
                temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
                seen_temp.append(len(temps) == 1 and temps[0].stat().st_size > 0)
                assert not path.exists()
            yield f"{i}.jpg", 1, "1 1"

    assert write_rle_csv(path, rows()) == 3000
    assert seen_temp == [True]


def test_write_is_atomic_on_error(tmp_path: Path) -> None:
    path = tmp_path / "submission.csv"
    write_rle_csv(path, [("old.jpg", 1, "1 1")])
    before = path.read_bytes()

    def failing_rows() -> Iterator[tuple[str, int, str]]:
        for i in range(5000):  # enough to overflow the write buffer into the temp file
            yield f"new_{i}.jpg", 1, "1 2 5 6"
        raise RuntimeError("inference crashed")

    with pytest.raises(RuntimeError, match="inference crashed"):
        write_rle_csv(path, failing_rows())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]


def test_write_error_without_previous_file_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "submission.csv"
    with pytest.raises(ValueError, match=r"row 1: class_id must be an integer >= 1"):
        write_rle_csv(path, [("a.jpg", 1, ""), ("a.jpg", 0, "")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [("", 1, ""), ("a.jpg", "1", ""), ("a.jpg", True, ""), ("a.jpg", 1, None), ("a.jpg", 1)],
)
def test_write_rejects_bad_rows(tmp_path: Path, bad: tuple) -> None:
    with pytest.raises(ValueError, match="row 0"):
        write_rle_csv(tmp_path / "s.csv", [bad])
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_umask_permissions(tmp_path: Path) -> None:
    # A temp-file writer built on mkstemp would leave the submission readable by its owner only.
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "s.csv"
    write_rle_csv(path, [("a.jpg", 1, "1 1")])
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_csv_error_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        read_rle_csv(write(tmp_path, "nope\n"))
