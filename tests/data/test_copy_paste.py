"""Copy-paste: image/mask alignment, no ignore labels pasted, class weights, use in A.Compose."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest

from podium.data.copy_paste import CopyPaste, DonorPool, find_objects
from podium.data.dataset import SegmentationDataset
from podium.data.formats import folder_samples
from podium.data.images import read_mask
from podium.data.synthetic import make_folder_dataset

IGNORE = 255
SIZE = 64


def _position_donor() -> tuple[np.ndarray, np.ndarray]:
    """Donor whose pixels encode their own (row, col) in channels 0 and 1; objects of classes
    1 and 2 touch ignore regions: a ring around one square and a strip along a disc."""
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[4:20, 4:20] = IGNORE
    mask[6:18, 6:18] = 1  # square inside an ignore ring
    cv2.circle(mask, (44, 44), 9, 2, -1)
    mask[30:60, 53:57] = IGNORE  # strip cutting into the disc's right edge
    mask[40:50, 20:30] = 1  # a second class-1 object
    rows, cols = np.indices((SIZE, SIZE), dtype=np.uint8)
    image = np.stack([rows, cols, np.full_like(rows, 77)], axis=-1)
    return image, mask


def _destination(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random image with values ≥ 100 (never a donor position) and a background mask with an
    ignore band."""
    rng = np.random.default_rng(seed)
    image = rng.integers(100, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[:, 28:36] = IGNORE
    return image, mask


def _copy_paste(**kwargs) -> CopyPaste:
    args = {
        "classes": [1, 2],
        "donors": [_position_donor()],
        "max_objects": 3,
        "min_area": 1,
        "ignore_index": IGNORE,
        "p": 1.0,
    } | kwargs
    return CopyPaste(**args)


def test_pasted_pixels_come_from_donor_pixels_of_the_pasted_class() -> None:
    donor_image, donor_mask = _position_donor()
    pipeline = A.Compose([_copy_paste()], seed=0)
    painted_over_ignore = 0
    for seed in range(40):
        image, mask = _destination(seed)
        out = pipeline(image=image, mask=mask)
        changed = (out["image"] != image).any(axis=-1)
        pasted = out["mask"] != mask
        # Hard paste: the image changes exactly where the mask got a pasted class (pasted
        # classes differ from the background and ignore they replace, donor pixels from the
        # destination's).
        assert (changed == pasted).all()
        rows, cols = out["image"][..., 0][changed], out["image"][..., 1][changed]
        assert (out["image"][..., 2][changed] == 77).all()
        # Each changed pixel shows the donor pixel at (rows, cols), whose label it took.
        assert (donor_mask[rows, cols] == out["mask"][changed]).all()
        assert set(np.unique(out["mask"][changed]).tolist()) <= {1, 2}
        # Ignore is never pasted: the target's ignore pixels only shrink.
        assert ((out["mask"] == IGNORE) <= (mask == IGNORE)).all()
        painted_over_ignore += int((pasted & (mask == IGNORE)).sum())
    assert painted_over_ignore > 0  # objects over destination ignore take their class


def test_each_object_keeps_its_shape_under_translation() -> None:
    donor_image, donor_mask = _position_donor()
    transform = _copy_paste(max_objects=1)
    transform.set_random_seed(3)
    for seed in range(20):
        image, mask = _destination(seed)
        out = transform(image=image, mask=mask)
        (obj,) = transform.params["objects"]
        ys, xs = np.nonzero(out["mask"] != mask)
        dy = out["image"][ys, xs, 0].astype(int) - ys
        dx = out["image"][ys, xs, 1].astype(int) - xs
        assert len(set(dy.tolist())) == 1 and len(set(dx.tolist())) == 1  # one rigid shift
        assert len(ys) == int(obj.label.sum())


def test_class_weights_shift_which_class_is_pasted() -> None:
    # Four class-1 and four class-2 squares, so the donor alone favours neither.
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for k in range(8):
        top, left = 4 + 15 * (k // 4), 4 + 15 * (k % 4)
        mask[top : top + 8, left : left + 8] = 1 + k % 2
    donor = (np.full((SIZE, SIZE, 3), 50, dtype=np.uint8), mask)

    def share_of_class_2(weights) -> float:
        pipeline = A.Compose(
            [_copy_paste(donors=[donor], max_objects=1, class_weights=weights)], seed=5
        )
        image, target = np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
        pasted = [pipeline(image=image, mask=target)["mask"].max() for _ in range(300)]
        return float(np.mean(np.array(pasted) == 2))

    uniform, favour_2, favour_1 = (share_of_class_2(w) for w in (None, [1, 9], [9, 1]))
    assert 0.4 < uniform < 0.6
    assert favour_2 > 0.8 and favour_1 < 0.2  # expected 0.9 and 0.1 (binomial sd 0.017)


def test_flips_after_copy_paste_move_pasted_objects_too() -> None:
    image, mask = _destination(1)
    alone = A.Compose([_copy_paste()], seed=9)(image=image, mask=mask)
    flipped = A.Compose([_copy_paste(), A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], seed=9)(
        image=image, mask=mask
    )
    assert (alone["mask"] != mask).any()
    assert (flipped["mask"] == alone["mask"][::-1, ::-1]).all()
    assert (flipped["image"] == alone["image"][::-1, ::-1]).all()


def test_blending_feathers_the_image_only() -> None:
    image, mask = _destination(2)
    donor = (np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8))
    donor[1][20:40, 20:40] = 1
    pipeline = A.Compose([_copy_paste(donors=[donor], max_objects=1, blend_sigma=2.0)], seed=0)
    out = pipeline(image=image, mask=mask)
    pasted = out["mask"] == 1
    assert pasted.sum() == 400 and set(np.unique(out["mask"]).tolist()) <= {0, 1, IGNORE}
    changed = (out["image"] != image).any(axis=-1)
    rim = changed & ~pasted
    assert rim.any()  # the feathered edge reaches past the object ...
    near = cv2.dilate(pasted.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert not (rim & ~near).any()  # ... but only by about 3 sigma
    centre = np.argwhere(pasted).mean(axis=0).astype(int)
    assert (out["image"][centre[0], centre[1]] <= 1).all()  # fully donor inside


def test_scale_jitter_resizes_image_and_mask_together() -> None:
    donor = (np.full((SIZE, SIZE, 3), 40, np.uint8), np.zeros((SIZE, SIZE), np.uint8))
    donor[1][10:30, 10:30] = 2
    donor[0][10:30, 10:30] = (9, 99, 199)
    pipeline = A.Compose([_copy_paste(donors=[donor], scale_range=(0.5, 0.5))], seed=0)
    image, mask = _destination(3)
    out = pipeline(image=image, mask=mask)
    pasted = out["mask"] == 2
    assert pasted.sum() == 100
    assert (out["image"][pasted] == (9, 99, 199)).all()
    assert ((out["image"] != image).any(axis=-1) == pasted).all()


def test_objects_larger_than_the_image_are_shrunk_to_fit() -> None:
    donor = (np.full((200, 300, 3), 7, np.uint8), np.ones((200, 300), np.uint8))
    image, mask = _destination(0)
    out = A.Compose([_copy_paste(donors=[donor])], seed=0)(image=image, mask=mask)
    # 300 wide → 64 wide: scale 64/300, so 200 rows → 43 rows, placed whole.
    assert (out["mask"] == 1).sum() == 43 * SIZE


def test_find_objects_takes_components_of_the_classes_only() -> None:
    _, mask = _position_donor()
    found = find_objects(mask, [1, 2], min_area=1)
    assert sorted((c, int(m.sum())) for c, _, _, m in found) == sorted(
        [(1, 144), (1, 100), (2, int((mask == 2).sum()))]
    )
    assert find_objects(mask, [1, 2], min_area=101)[0][0] == 1  # the 144-pixel square only
    assert len(find_objects(mask, [1, 2], min_area=145)) == int((mask == 2).sum() >= 145)


def test_yaml_round_trip_then_donors(tmp_path: Path) -> None:
    pipeline = A.Compose([_copy_paste(class_weights=[1.0, 3.0], scale_range=(0.8, 1.2))])
    spec = json.loads(json.dumps(A.to_dict(pipeline)))  # plain data: no donor arrays inside
    (entry,) = spec["transform"]["transforms"]
    assert entry["__class_fullname__"] == "podium.data.copy_paste.CopyPaste"
    assert entry["classes"] == [1, 2] and entry["class_weights"] == [1.0, 3.0]
    rebuilt = A.from_dict(spec)
    image, mask = _destination(0)
    with pytest.raises(RuntimeError, match="set_donors"):
        rebuilt(image=image, mask=mask)
    rebuilt.transforms[0].set_donors([_position_donor()])
    assert (rebuilt(image=image, mask=mask)["mask"] != mask).any()
    with pytest.raises(ValueError, match="mask"):
        rebuilt(image=image)


def test_donor_pool_inside_a_dataset(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", n=4, num_classes=3, ignore_index=IGNORE, seed=1)
    samples = folder_samples(root / "images", root / "masks")
    reader = partial(read_mask, num_classes=3, ignore_index=IGNORE)
    pool = DonorPool(samples, reader)
    assert len(pool) == 4 and pool[0][0].shape == (64, 64, 3) and pool[0][1].shape == (64, 64)
    transform = A.Compose([CopyPaste([1, 2], pool, ignore_index=IGNORE, p=1.0)], seed=0)
    item = SegmentationDataset(samples, reader, transform)[0]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (64, 64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": []}, "at least one class"),
        ({"classes": [1, IGNORE]}, "ignore index"),
        ({"class_weights": [1.0]}, "one positive weight"),
        ({"class_weights": [1.0, 0.0]}, "one positive weight"),
        ({"max_objects": 0}, "max_objects"),
        ({"scale_range": (1.2, 0.8)}, "scale_range"),
        ({"blend_sigma": -1}, "blend_sigma"),
    ],
)
def test_bad_arguments_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _copy_paste(**kwargs)
