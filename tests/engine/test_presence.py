"""Class-head targets read off the mask: hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from podium.heads.classification import presence_from_mask


def test_multilabel_presence_per_class_and_any():
    mask = torch.zeros(3, 2, 4, 4, dtype=torch.uint8)
    mask[0, 1, 2, 2] = 1  # image 0 holds class 2 only
    mask[1, 0, 0, 0] = 1
    mask[1, 1, 3, 3] = 1  # image 1 holds both
    mask[2, 0] = 255  # image 2: ignored pixels only, so nothing
    assert presence_from_mask(mask, 2, 2).tolist() == [[0, 1], [1, 1], [0, 0]]
    assert presence_from_mask(mask, 2, 1).tolist() == [[1], [1], [0]]


def test_multiclass_presence_ignores_out_of_range_and_background_for_any():
    mask = torch.tensor(
        [
            [[0, 0], [0, 0]],  # background only
            [[0, 2], [255, 0]],  # class 2 and an ignored pixel
            [[1, 1], [2, 0]],
        ],
        dtype=torch.uint8,
    )
    assert presence_from_mask(mask, 3, 3).tolist() == [[1, 0, 0], [1, 0, 1], [1, 1, 1]]
    assert presence_from_mask(mask, 3, 1).tolist() == [[0], [1], [1]]
    assert presence_from_mask(mask.to(torch.int16) - 1, 3, 3)[0].tolist() == [0, 0, 0]


def test_mismatched_class_count_is_an_error():
    with pytest.raises(ValueError, match="use 3 or 1"):
        presence_from_mask(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), 3, 2)
