"""Optimizers: Ranger / Lookahead follow hand-written reference update rules; option errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from podium.optim import OPTIMIZERS, build_optimizer
from podium.registry import UnknownNameError

STEPS = 20


class TwoParts(nn.Module):
    """A stand-in model with an encoder and a decoder (a matrix and a vector each)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(4, 3)
        self.decoder = nn.Linear(3, 2)


def quadratic_grads(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of sum_i 0.5 * (i + 1) * ||p_i - 0.3||^2 (a different curvature per tensor)."""
    return [(i + 1) * (p - 0.3) for i, p in enumerate(params)]


def model_grads(model: nn.Module) -> None:
    """Set .grad of every model param to the quadratic's gradient."""
    params = list(model.parameters())
    for p, g in zip(params, quadratic_grads([p.detach() for p in params]), strict=True):
        p.grad = g.clone()


def reference_radam(p, g, state, lr, betas, eps):
    """One RAdam step (Liu et al. 2020, as torch.optim.RAdam: rectify when rho_t > 5)."""
    beta1, beta2 = betas
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = beta1 * state.get("m", torch.zeros_like(p)) + (1 - beta1) * g
    v = state["v"] = beta2 * state.get("v", torch.zeros_like(p)) + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
    if rho_t <= 5:  # variance intractable: plain momentum step
        return p - lr * m_hat
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    # eps joins sqrt(v) before the second-moment bias correction (torch's RAdam and Ranger alike).
    adaptive = math.sqrt(1 - beta2**t) / (v.sqrt() + eps)
    return p - lr * rect * m_hat * adaptive


def reference_lookahead(fast, slow, step, k, alpha):
    """Every k steps: slow += alpha * (fast - slow); fast = slow."""
    if step % k:
        return fast, slow
    slow = slow + alpha * (fast - slow)
    return slow.clone(), slow


def reference_radam_lookahead(params, lrs, steps, betas, eps, k, alpha):
    """Trajectories (per step, per param) of RAdam + Lookahead on the quadratic."""
    params = [p.detach().clone() for p in params]
    slows = [p.clone() for p in params]
    states = [{} for _ in params]
    trajectory = []
    for step in range(1, steps + 1):
        grads = quadratic_grads(params)
        params = [
            reference_radam(p, g, s, lr, betas, eps)
            for p, g, s, lr in zip(params, grads, states, lrs, strict=True)
        ]
        pairs = [reference_lookahead(p, s, step, k, alpha) for p, s in zip(params, slows)]
        params, slows = [p for p, _ in pairs], [s for _, s in pairs]
        trajectory.append([p.clone() for p in params])
    return trajectory


def run(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[list[torch.Tensor]]:
    """Parameter trajectory of the built optimizer on the quadratic."""
    trajectory = []
    for _ in range(steps):
        model_grads(model)
        optimizer.step()
        trajectory.append([p.detach().clone() for p in model.parameters()])
    return trajectory


def assert_same_trajectory(ours, reference) -> None:
    for step, (mine, ref) in enumerate(zip(ours, reference, strict=True), start=1):
        for a, b in zip(mine, ref, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=f"diverged at step {step}")


def part_lrs(model: nn.Module, encoder_lr: float, base_lr: float) -> list[float]:
    return [
        encoder_lr if p in set(model.encoder.parameters()) else base_lr for p in model.parameters()
    ]


def test_ranger_is_reference_radam_plus_lookahead_k6_alpha05():
    model = TwoParts()
    reference = reference_radam_lookahead(
        list(model.parameters()),
        part_lrs(model, 0.01, 0.05),
        STEPS,
        betas=(0.95, 0.999),
        eps=1e-5,
        k=6,
        alpha=0.5,
    )
    optimizer = build_optimizer(model, "ranger", lr=0.05, lr_groups={"encoder": 0.01})
    assert_same_trajectory(run(model, optimizer, STEPS), reference)


def test_radam_with_lookahead_matches_the_same_reference():
    model = TwoParts()
    reference = reference_radam_lookahead(
        list(model.parameters()),
        part_lrs(model, 0.01, 0.05),
        STEPS,
        betas=(0.9, 0.999),
        eps=1e-8,
        k=5,
        alpha=0.3,
    )
    optimizer = build_optimizer(
        model, "radam", lr=0.05, lr_groups={"encoder": 0.01}, lookahead={"k": 5, "alpha": 0.3}
    )
    assert_same_trajectory(run(model, optimizer, STEPS), reference)


def test_lookahead_over_momentum_sgd_matches_reference():
    model = TwoParts()
    params = [p.detach().clone() for p in model.parameters()]
    slows, bufs, reference = [p.clone() for p in params], [None] * len(params), []
    for step in range(1, STEPS + 1):
        grads = quadratic_grads(params)
        bufs = [g if b is None else 0.9 * b + g for b, g in zip(bufs, grads)]
        params = [p - 0.05 * b for p, b in zip(params, bufs)]
        pairs = [reference_lookahead(p, s, step, 6, 0.5) for p, s in zip(params, slows)]
        params, slows = [p for p, _ in pairs], [s for _, s in pairs]
        reference.append(params)
    optimizer = build_optimizer(model, "sgd", lr=0.05, momentum=0.9, lookahead={})
    assert_same_trajectory(run(model, optimizer, STEPS), reference)


def test_ranger_descends_from_the_first_step():
    # pytorch_optimizer's own default (degenerated_to_sgd=False) climbs for ~5 steps.
    model = TwoParts()
    before = sum(((p - 0.3) ** 2).sum().item() for p in model.parameters())
    optimizer = build_optimizer(model, "ranger", lr=0.01)
    model_grads(model)
    optimizer.step()
    after = sum(((p - 0.3) ** 2).sum().item() for p in model.parameters())
    assert after < before
    group = optimizer.param_groups[0]
    assert (group["k"], group["alpha"], group["betas"]) == (6, 0.5, (0.95, 0.999))


def test_lookahead_state_round_trip_continues_identically():
    model_a, model_b = TwoParts(), TwoParts()
    opt_a = build_optimizer(model_a, "adamw", lr=0.05, weight_decay=0.01, lookahead={"k": 3})
    run(model_a, opt_a, 4)
    model_b.load_state_dict(model_a.state_dict())
    opt_b = build_optimizer(model_b, "adamw", lr=0.05, weight_decay=0.01, lookahead={"k": 3})
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # torch aliases same-device state
    assert_same_trajectory(run(model_b, opt_b, 5), run(model_a, opt_a, 5))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "radam", "ranger"])
def test_every_optimizer_builds_with_named_groups(name):
    optimizer = build_optimizer(TwoParts(), name, lr=1e-3, weight_decay=1e-2)
    names = [g["name"] for g in optimizer.param_groups]
    assert names == ["encoder", "encoder_no_decay", "decoder", "decoder_no_decay"]
    assert optimizer.defaults.get("fused") in (None, False)  # CPU params: no fused kernel


def test_yaml_lists_become_tuples():
    optimizer = build_optimizer(TwoParts(), "adamw", lr=1e-3, betas=[0.8, 0.99])
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)


def test_unknown_option_names_it_and_the_accepted_ones():
    with pytest.raises(ValueError, match=r"momentum.*Accepted: amsgrad, betas"):
        build_optimizer(TwoParts(), "adamw", lr=1e-3, momentum=0.9)


def test_ranger_rejects_unknown_options_despite_its_kwargs_sink():
    with pytest.raises(ValueError, match=r"unknown option\(s\) for optimizer 'ranger': nesterov"):
        build_optimizer(TwoParts(), "ranger", lr=1e-3, nesterov=True)


def test_lookahead_rejects_unknown_keys_and_double_lookahead():
    with pytest.raises(ValueError, match=r"lookahead: steps.*Accepted: alpha, k"):
        build_optimizer(TwoParts(), "adam", lr=1e-3, lookahead={"steps": 5})
    with pytest.raises(ValueError, match="already includes Lookahead"):
        build_optimizer(TwoParts(), "ranger", lr=1e-3, lookahead={})


def test_unknown_optimizer_lists_the_registered_names():
    with pytest.raises(UnknownNameError, match="Valid: adam, adamw, radam, ranger, sgd"):
        build_optimizer(TwoParts(), "adamm", lr=1e-3)
    assert OPTIMIZERS.names() == ["adam", "adamw", "radam", "ranger", "sgd"]


def test_everything_frozen_is_an_error():
    model = TwoParts().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(model, "adamw", lr=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fused kernels need CUDA")
@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_on_cuda_unless_foreach_is_chosen(name):
    model = TwoParts().cuda()
    assert build_optimizer(model, name, lr=1e-3).defaults["fused"] is True
    assert not build_optimizer(model, name, lr=1e-3, foreach=True).defaults["fused"]
    run(model, build_optimizer(model, name, lr=1e-3, lookahead={}), 3)
