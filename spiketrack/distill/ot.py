"""HAD spatial alignment: an entropic optimal-transport plan between the student's and the teacher's token grids.

Hierarchical Asymmetric Distillation (HAD; Deng et al., arXiv:2510.19560) aligns the student's and the teacher's
spatial layouts by entropic optimal transport instead of fixed pooling or index pairing. Here the plan ``pi``
``[B, Ns, Nt]`` between the student's ``Ns`` search tokens and the teacher's ``Nt`` (uniform marginals, every token
carries the same mass) minimises ``<pi, C> - epsilon * H(pi)`` for a cost ``C`` built from token positions in the
search crop (squared distance of token centres, crop coordinates in [0, 1]) and/or features (``1 - cosine``). The
feature KD then regresses each projected student token onto its barycentric teacher target
``sum_j pi_ij t_j / sum_j pi_ij`` (:func:`transport_targets`).

The solver is a short log-domain Sinkhorn in torch rather than POT's ``ot.sinkhorn``: it runs a whole batch of
problems ``[B, N, M]`` at once (POT solves one problem per call), the log-domain updates (``logsumexp`` of
potentials) stay finite at the small epsilon needed for a near-hard assignment (POT's default ``sinkhorn_knopp``
scales ``exp(-C / epsilon)``, which underflows there), autograd runs through the iterations on any device, and it
adds no dependency.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from spiketrack.distill.align import pool_tokens, tokens_to_grid


def sinkhorn(
    cost: torch.Tensor,
    epsilon: float,
    iters: int = 100,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
) -> torch.Tensor:
    """Entropic OT plan for costs ``[B, N, M]`` -> ``[B, N, M]`` (log-domain Sinkhorn; Cuturi, NeurIPS 2013).

    ``a`` ``[B, N]`` and ``b`` ``[B, M]`` are the marginals (default uniform, ``1/N`` and ``1/M``); each must sum
    to 1. After ``iters`` alternating updates of the dual potentials the column sums equal ``b`` exactly and the
    row sums approach ``a``. As ``epsilon -> 0`` the plan tends to an optimal (unregularised) transport plan.
    Differentiable with respect to ``cost`` (and the marginals).
    """
    if epsilon <= 0:
        raise ValueError(f"sinkhorn: epsilon must be > 0, got {epsilon}")
    c = cost.float()
    bsz, n, m = c.shape
    log_a = torch.log(a.float()) if a is not None else torch.full((bsz, n), -math.log(n), device=c.device)
    log_b = torch.log(b.float()) if b is not None else torch.full((bsz, m), -math.log(m), device=c.device)
    f = torch.zeros(bsz, n, device=c.device)
    g = torch.zeros(bsz, m, device=c.device)
    for _ in range(iters):
        f = epsilon * log_a - epsilon * torch.logsumexp((g[:, None, :] - c) / epsilon, dim=2)
        g = epsilon * log_b - epsilon * torch.logsumexp((f[:, :, None] - c) / epsilon, dim=1)
    return torch.exp((f[:, :, None] + g[:, None, :] - c) / epsilon)


def grid_centres(g: int, device: torch.device | None = None) -> torch.Tensor:
    """Centres ``[g*g, 2]`` (row, column) of the tokens of a ``g x g`` grid in crop coordinates [0, 1], row-major."""
    c = (torch.arange(g, dtype=torch.float32, device=device) + 0.5) / g
    rows, cols = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], dim=1)


def position_cost(gs: int, gt: int, device: torch.device | None = None) -> torch.Tensor:
    """Squared distance between token centres of a ``gs x gs`` and a ``gt x gt`` grid: ``[gs^2, gt^2]``."""
    return torch.cdist(grid_centres(gs, device), grid_centres(gt, device)) ** 2


def feature_cost(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``1 - cosine`` between tokens ``[B, Ns, C]`` and ``[B, Nt, C]`` -> ``[B, Ns, Nt]`` (in [0, 2])."""
    return 1.0 - F.normalize(student.float(), dim=-1) @ F.normalize(teacher.float(), dim=-1).transpose(1, 2)


def transport_targets(teacher: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
    """Barycentric projection: teacher tokens ``[B, Nt, C]`` carried by ``plan`` ``[B, Ns, Nt]`` -> ``[B, Ns, C]``."""
    return (plan @ teacher.float()) / plan.sum(dim=2, keepdim=True).clamp_min(1e-12)


def ot_feature_kd(
    projected: torch.Tensor,
    teacher: torch.Tensor,
    cost: str = "both",
    epsilon: float = 0.01,
    iters: int = 100,
) -> torch.Tensor:
    """MSE between projected student tokens and their OT-aligned teacher targets.

    ``projected``: student tokens already projected to the teacher's width ``[B, Ns, Ct]`` (Ns = gs^2);
    ``teacher``: teacher search features in any layout of :func:`tokens_to_grid` (Nt = gt^2), layer-normalised
    here as in :func:`spiketrack.distill.losses.feature_kd`. ``cost``: ``'position'``, ``'feature'`` or
    ``'both'`` (their sum). The plan is computed without gradient: it is this step's assignment of teacher mass
    to student tokens, and the student learns its features, not to move the assignment.
    """
    gt = tokens_to_grid(teacher).shape[-1]
    target = pool_tokens(teacher, gt)
    target = F.layer_norm(target, target.shape[-1:])
    gs = math.isqrt(projected.shape[1])
    with torch.no_grad():
        c = torch.zeros(projected.shape[0], projected.shape[1], target.shape[1], device=projected.device)
        if cost in ("position", "both"):
            c = c + position_cost(gs, gt, projected.device)
        if cost in ("feature", "both"):
            c = c + feature_cost(projected, target)
        plan = sinkhorn(c, epsilon, iters)
    return F.mse_loss(projected.float(), transport_targets(target, plan))


__all__ = [
    "feature_cost",
    "grid_centres",
    "ot_feature_kd",
    "position_cost",
    "sinkhorn",
    "transport_targets",
]
