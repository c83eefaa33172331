"""HAD temporal alignment: a GRU over the student's per-frame search features of a clip, aligned to the teacher's.

Hierarchical Asymmetric Distillation (HAD; Deng et al., arXiv:2510.19560) bridges the temporal asymmetry between
teacher and student with a GRU-based temporal alignment module. Here, for a clip of ``n`` consecutive search frames
(``data.num_search = n``, the pair sampler's consecutive frames), the student's search tokens of one layer are
projected to the teacher's width, and every token position's sequence over the ``n`` frames runs through a GRU
(trained with the distillation projections, dropped at inference). The aligned student sequence is the projection
plus a residual read-out of the GRU state, ``x_k + W h_k``, with ``W`` initialised to zero so training starts from
plain per-frame feature KD; it is regressed (MSE) onto the teacher's layer-normalised tokens of the same frames.
Both models' tokens are mapped onto the common (coarser) grid by position (:func:`pool_tokens`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spiketrack.distill.align import grid_size, pool_tokens


class TemporalAlign(nn.Module):
    """Student clip features -> temporally aligned features in the teacher's width.

    ``forward(x)``: ``x`` ``[B, n, N, Cs]`` (n frames, N tokens) -> ``[B, n, N, Ct]``.
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)
        self.gru = nn.GRU(teacher_dim, teacher_dim, batch_first=True)
        self.out = nn.Linear(teacher_dim, teacher_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, tokens, _ = x.shape
        p = self.proj(x.float())  # [B, n, N, Ct]
        seq = p.permute(0, 2, 1, 3).reshape(b * tokens, n, -1)  # one sequence over time per token position
        h, _ = self.gru(seq)
        h = h.reshape(b, tokens, n, -1).permute(0, 2, 1, 3)
        return p + self.out(h)


def clip_tokens(x: torch.Tensor, n: int, grid: int) -> torch.Tensor:
    """Per-frame search features of ``B*n`` rows ordered (sample, frame) -> ``[B, n, grid^2, C]``."""
    t = pool_tokens(x, grid)
    return t.reshape(-1, n, *t.shape[1:])


def temporal_kd(student: torch.Tensor, teacher: torch.Tensor, align: TemporalAlign, n: int) -> torch.Tensor:
    """MSE between the GRU-aligned student clip and the teacher's layer-normalised clip, on the common grid.

    ``student`` / ``teacher``: one layer's search features of ``B*n`` frames, rows ordered (sample, frame), in any
    layout of :func:`spiketrack.distill.align.tokens_to_grid`.
    """
    grid = min(grid_size(student), grid_size(teacher))
    aligned = align(clip_tokens(student, n, grid))
    target = clip_tokens(teacher, n, grid)
    target = F.layer_norm(target, target.shape[-1:])
    return F.mse_loss(aligned, target)


__all__ = ["TemporalAlign", "clip_tokens", "temporal_kd"]
