"""LR schedules: the LR every optimizer step sees, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from podium.optim import SCHEDULES, build_scheduler, wrap_lookahead

BASE, SECOND = 0.1, 0.01  # two groups: the base lr and a 10x smaller one (an encoder)
EXACT = {"rel": 1e-12, "abs": 0.0}


def two_group_sgd(momentum: float = 0.9) -> torch.optim.Optimizer:
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    return torch.optim.SGD(
        [{"params": [a], "name": "decoder"}, {"params": [b], "lr": SECOND, "name": "encoder"}],
        lr=BASE,
        momentum=momentum,
    )


def lrs_seen(config: dict, epochs: int, steps_per_epoch: int, metrics=()) -> list[list[float]]:
    """Per optimizer step, every group's LR, stepping the scheduler as Lightning does."""
    scheduler, optimizer = config["scheduler"], config["scheduler"].optimizer
    seen = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            seen.append([g["lr"] for g in optimizer.param_groups])
            optimizer.step()
            if config["interval"] == "step":
                scheduler.step()
        if config["interval"] == "epoch":
            scheduler.step(*([metrics[epoch]] if metrics else []))
    return seen


def build(name: str, epochs: int, spe: int, optimizer=None, **kwargs) -> dict:
    return build_scheduler(
        optimizer or two_group_sgd(),
        name,
        epochs=epochs,
        steps_per_epoch=spe,
        monitor="val/loss",
        monitor_mode="min",
        **kwargs,
    )


def assert_proportional(seen: list[list[float]]) -> None:
    for base, second in seen:
        assert second == pytest.approx(base * SECOND / BASE, **EXACT)


def test_registered_schedules():
    assert SCHEDULES.names() == [
        "constant",
        "cosine",
        "flat_cosine",
        "one_cycle",
        "plateau",
        "step",
    ]


def test_constant_keeps_every_group_lr():
    config = build("constant", 3, 4)
    assert config["interval"] == "epoch" and config["monitor"] == "val/loss"
    assert lrs_seen(config, 3, 4) == [[BASE, SECOND]] * 12


def test_step_drops_by_gamma_exactly_at_the_boundary():
    seen = lrs_seen(build("step", 5, 3, step_size=2, gamma=0.5), 5, 3)
    per_epoch = [seen[i][0] for i in range(0, 15, 3)]
    assert per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], **EXACT)
    assert seen[5][0] == BASE and seen[6][0] == pytest.approx(0.05, **EXACT)  # steps 5 -> 6
    assert_proportional(seen)


def test_cosine_with_warmup_hand_computed():
    min_lr, warmup, total = 1e-3, 4, 20
    seen = lrs_seen(build("cosine", 5, 4, warmup_steps=warmup, min_lr=min_lr), 5, 4)
    ratio = min_lr / BASE
    assert seen[0][0] == pytest.approx(BASE / 5, **EXACT)  # (0 + 1) / (warmup + 1)
    assert seen[3][0] == pytest.approx(BASE * 4 / 5, **EXACT)
    assert seen[warmup][0] == BASE  # the peak, exactly
    third = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi / 3))  # 5 of 15 cosine steps
    assert seen[warmup + 5][0] == pytest.approx(BASE * third, **EXACT)
    assert seen[total - 1] == pytest.approx([min_lr, SECOND * ratio], **EXACT)
    assert_proportional(seen)


def test_cosine_warmup_epochs_equals_warmup_steps():
    by_epochs = lrs_seen(build("cosine", 4, 5, warmup_epochs=1), 4, 5)
    by_steps = lrs_seen(build("cosine", 4, 5, warmup_steps=5), 4, 5)
    assert by_epochs == by_steps
    assert by_steps[-1] == [0.0, 0.0] and by_steps[0][0] == pytest.approx(BASE / 6, **EXACT)


def test_flat_cosine_is_exactly_flat_then_ends_exactly_at_min_lr():
    min_lr = 1e-3
    config = build("flat_cosine", 5, 4, flat_epochs=3, min_lr=min_lr)
    assert config["interval"] == "step"
    seen = lrs_seen(config, 5, 4)
    assert all(lrs == [BASE, SECOND] for lrs in seen[:12])
    ratio = min_lr / BASE
    first = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi / 8))  # 1 of 8 anneal steps
    assert seen[12][0] == pytest.approx(BASE * first, **EXACT)
    assert seen[-1] == pytest.approx([min_lr, SECOND * ratio], **EXACT)
    assert all(a[0] > b[0] for a, b in zip(seen[11:], seen[12:]))  # strictly decreasing
    assert_proportional(seen)


def test_flat_cosine_with_a_shorter_anneal_holds_min_lr_after():
    seen = lrs_seen(build("flat_cosine", 6, 2, flat_epochs=2, anneal_epochs=2, min_lr=0.0), 6, 2)
    assert seen[7] == [0.0, 0.0] and seen[-1] == [0.0, 0.0]


def test_one_cycle_peaks_at_each_group_lr():
    seen = lrs_seen(build("one_cycle", 2, 10, pct_start=0.3), 2, 10)
    peak = round(0.3 * 20) - 1  # torch: the warmup phase ends at step pct_start * total - 1
    assert seen[peak] == pytest.approx([BASE, SECOND], **EXACT)
    assert max(s[0] for s in seen) == pytest.approx(BASE, **EXACT)
    assert seen[0] == pytest.approx([BASE / 25, SECOND / 25], **EXACT)
    assert seen[-1][0] < BASE / 25 / 1e3


def test_plateau_reduces_on_the_monitored_metric_down_to_proportional_floors():
    config = build("plateau", 6, 1, patience=1, factor=0.5, min_lr=0.04)
    assert (config["interval"], config["monitor"]) == ("epoch", "val/loss")
    seen = lrs_seen(config, 6, 1, metrics=[1.0, 0.9, 0.95, 0.97, 0.99, 0.99])
    assert [s[0] for s in seen] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05], **EXACT)
    seen = lrs_seen(
        build("plateau", 8, 1, patience=0, factor=0.5, min_lr=0.04), 8, 1, metrics=[1.0] * 8
    )
    assert seen[-1] == pytest.approx([0.04, 0.004], **EXACT)


def test_schedules_drive_a_lookahead_wrapped_optimizer():
    optimizer = wrap_lookahead(two_group_sgd(), {"k": 2})
    seen = lrs_seen(build("flat_cosine", 2, 2, optimizer=optimizer, flat_epochs=1), 2, 2)
    assert seen[0] == [BASE, SECOND] and seen[-1] == [0.0, 0.0]


def test_option_errors_name_the_options():
    with pytest.raises(ValueError, match=r"warmup.*Accepted: min_lr, warmup_epochs, warmup_steps"):
        build("cosine", 2, 2, warmup=3)
    with pytest.raises(ValueError, match="schedule 'step' needs option.*step_size"):
        build("step", 2, 2)
    with pytest.raises(ValueError, match="not both"):
        build("cosine", 2, 2, warmup_steps=1, warmup_epochs=1)
    with pytest.raises(ValueError, match="min_lr must lie in"):
        build("cosine", 2, 2, min_lr=1.0)
    with pytest.raises(ValueError, match="monitor_mode"):
        build_scheduler(two_group_sgd(), "constant", 1, 1, "val/loss", "maximum")
