"""Class-balanced sampling: weights by hand, rare-class images drawn more often, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from podium.data.samplers import class_balanced_sampler, class_balanced_weights


def _presence() -> np.ndarray:
    """100 images: all hold class 0, 10 hold the rare class 1, the last 5 hold no class."""
    presence = np.zeros((100, 3), dtype=bool)
    presence[:95, 0] = True
    presence[:10, 1] = True
    presence[10:40, 2] = True
    return presence


def test_weights_by_hand() -> None:
    weights = class_balanced_weights(_presence())
    # freq: class 0 0.95, class 1 0.10, class 2 0.30 → 1/freq = 1.05, 10, 3.33.
    np.testing.assert_allclose(weights[:10], 10.0)
    np.testing.assert_allclose(weights[10:40], 1 / 0.3)
    np.testing.assert_allclose(weights[40:95], 1 / 0.95)
    np.testing.assert_allclose(weights[95:], 1 / 0.95)  # no class: the smallest weight
    np.testing.assert_allclose(class_balanced_weights(_presence(), power=0.5)[:10], np.sqrt(10))
    np.testing.assert_allclose(class_balanced_weights(_presence(), power=0.0), 1.0)


def test_rare_class_images_are_drawn_more_often() -> None:
    draws = np.array(
        [i for i, _ in class_balanced_sampler(_presence(), seed=0, num_samples=20_000)]
    )
    counts = np.bincount(draws, minlength=100)
    per_image_rare, per_image_common = counts[:10].mean(), counts[40:95].mean()
    assert per_image_rare > 5 * per_image_common  # expected ratio 10 / 1.05 ≈ 9.5
    # The rare class now fills ~40% of the draws instead of 10%.
    assert 0.3 < np.isin(draws, np.arange(10)).mean() < 0.5


def test_sampler_is_seeded_and_draws_n_by_default() -> None:
    first = list(class_balanced_sampler(_presence(), seed=3))
    assert len(first) == 100
    assert list(class_balanced_sampler(_presence(), seed=3)) == first
    assert list(class_balanced_sampler(_presence(), seed=4)) != first


def test_no_class_anywhere_is_uniform_and_bad_shapes_raise() -> None:
    np.testing.assert_allclose(class_balanced_weights(np.zeros((4, 2), dtype=bool)), 1.0)
    with pytest.raises(ValueError, match="N×C"):
        class_balanced_weights(np.zeros(4, dtype=bool))


def test_draws_and_seeds_are_a_function_of_seed_and_epoch() -> None:
    import torch

    from podium.data.sample_keys import sample_seeds

    sampler = class_balanced_sampler(_presence(), seed=3)
    torch.manual_seed(0)
    first = list(sampler)
    torch.manual_seed(1)  # neither the global torch RNG nor an earlier pass changes an epoch
    assert list(sampler) == first
    assert [s for _, s in first] == sample_seeds(3, 0, 100)  # one seed per position
    sampler.set_epoch(1)
    second = list(sampler)
    assert [i for i, _ in second] != [i for i, _ in first]
    assert {s for _, s in second}.isdisjoint(s for _, s in first)
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert sampler.generator is None  # nothing for a checkpoint to carry
