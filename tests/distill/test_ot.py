"""HAD spatial alignment: entropic OT plans with known answers."""

from __future__ import annotations

import pytest
import torch

from spiketrack.distill.ot import (
    grid_centres,
    ot_feature_kd,
    position_cost,
    sinkhorn,
    transport_targets,
)


def test_plan_marginals_match_given_ones() -> None:
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(2, 5, 7, generator=g)
    a = torch.softmax(torch.randn(2, 5, generator=g), dim=1)
    b = torch.softmax(torch.randn(2, 7, generator=g), dim=1)
    plan = sinkhorn(cost, epsilon=0.05, iters=500, a=a, b=b)
    assert plan.shape == (2, 5, 7)
    assert torch.allclose(plan.sum(dim=2), a, atol=1e-5)
    assert torch.allclose(plan.sum(dim=1), b, atol=1e-5)
    uniform = sinkhorn(cost, epsilon=0.05, iters=500)
    assert torch.allclose(uniform.sum(dim=2), torch.full((2, 5), 1 / 5), atol=1e-5)
    assert torch.allclose(uniform.sum(dim=1), torch.full((2, 7), 1 / 7), atol=1e-5)


def test_permutation_cost_gives_the_permutation_as_epsilon_goes_to_zero() -> None:
    perm = torch.tensor([3, 0, 4, 1, 2])
    p = torch.eye(5)[perm]  # p[i, perm[i]] = 1
    cost = (1.0 - p).unsqueeze(0)
    errors = [(sinkhorn(cost, eps, iters=200)[0] - p / 5).abs().max().item() for eps in (1.0, 0.1, 0.01)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6
    assert sinkhorn(cost, 0.01, iters=200)[0].argmax(dim=1).tolist() == perm.tolist()


def test_equal_grids_with_position_costs_give_the_identity() -> None:
    cost = position_cost(4, 4).unsqueeze(0)  # neighbours are (1/4)^2 apart
    assert torch.allclose(cost[0].diagonal(), torch.zeros(16))
    plan = sinkhorn(cost, epsilon=1e-3, iters=50)[0]
    assert torch.allclose(plan, torch.eye(16) / 16, atol=1e-6)
    # the barycentric targets are then the teacher's own tokens
    t = torch.randn(1, 16, 3)
    assert torch.allclose(transport_targets(t, plan.unsqueeze(0)), t, atol=1e-5)


def test_grid_centres_and_coarse_to_fine_plan() -> None:
    assert grid_centres(2).tolist() == [[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]]
    # 2x2 student, 4x4 teacher: each student token takes the four teacher tokens of its quadrant, 1/16 each
    plan = sinkhorn(position_cost(2, 4).unsqueeze(0), epsilon=1e-3, iters=200)[0]
    quadrant = grid_centres(4)[:, 0].ge(0.5).long() * 2 + grid_centres(4)[:, 1].ge(0.5).long()
    expected = torch.zeros(4, 16)
    expected[quadrant, torch.arange(16)] = 1 / 16
    assert torch.allclose(plan, expected, atol=1e-5)


def test_sinkhorn_is_differentiable_and_stable_at_small_epsilon() -> None:
    cost = torch.rand(1, 6, 6, requires_grad=True)
    plan = sinkhorn(cost * 50.0, epsilon=1e-3, iters=100)  # exp(-cost / eps) would underflow
    assert torch.isfinite(plan).all()
    (plan * torch.arange(36.0).view(1, 6, 6)).sum().backward()
    assert cost.grad is not None and torch.isfinite(cost.grad).all()


def test_ot_feature_kd_zero_when_student_equals_aligned_teacher() -> None:
    torch.manual_seed(0)
    teacher = torch.randn(2, 16, 8)  # 4x4 grid
    target = torch.nn.functional.layer_norm(teacher, (8,))
    # student on the same grid holding the teacher's normalised tokens: identity plan, zero loss
    for cost in ("position", "both"):
        assert ot_feature_kd(target.clone(), teacher, cost, 1e-3, 50).item() == pytest.approx(0.0, abs=1e-8)
    # a student with its tokens permuted: the position cost keeps the grid and penalises it
    shuffled = target[:, torch.randperm(16)]
    assert ot_feature_kd(shuffled, teacher, "position", 1e-3, 50).item() > 0.1
    # ... while the feature cost finds each token's match wherever it lies
    assert ot_feature_kd(shuffled, teacher, "feature", 1e-3, 200).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(2, 4, 8, requires_grad=True)  # 2x2 student grid vs 4x4 teacher
    loss = ot_feature_kd(student, teacher, "both", 0.01, 100)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
