"""Alignment between the teacher's and the student's token layouts, and the learned feature projections.

Both models return per-layer *search* tokens. The teacher (ViT, 16x16 patches) has a ``gt x gt`` grid
(``search_size / 16``); the student's grid ``gs x gs`` depends on its stem. Tokens are mapped by where
they lie in the search crop, never by index: token (i, j) of a ``g x g`` grid covers the crop cells
``[i/g, (i+1)/g) x [j/g, (j+1)/g)``. Both layouts are brought to the common grid
``g = min(gt, gs)`` by adaptive average pooling of the token grid (the finer model's tokens are averaged
over the region of each coarser token), so the i-th pooled token of both models covers the same part of
the crop. A similarity matrix ``[B, N, N]`` is pooled on both axes the same way (:func:`pool_similarity`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def tokens_to_grid(x: torch.Tensor) -> torch.Tensor:
    """Search features -> ``[B, C, g, g]``.

    Accepts tokens ``[B, N, C]`` (N = g*g), spiking tokens ``[T, B, N, C]`` and spiking maps
    ``[T, B, C, H, W]`` (time-averaged, the student's rate code), or maps ``[B, C, H, W]``.
    """
    if x.dim() == 5:
        return x.float().mean(dim=0)
    if x.dim() == 4 and x.shape[-1] != x.shape[-2]:
        x = x.float().mean(dim=0)  # [T, B, N, C]
    elif x.dim() == 4:
        return x.float()
    b, n, c = x.shape
    g = math.isqrt(n)
    if g * g != n:
        raise ValueError(f"search tokens [B, N, C] with N={n}: not a square grid")
    return x.float().transpose(1, 2).reshape(b, c, g, g)


def grid_size(x: torch.Tensor) -> int:
    """Side of the token grid of search features (see :func:`tokens_to_grid`)."""
    return tokens_to_grid(x).shape[-1]


def pool_tokens(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Search features -> ``[B, grid*grid, C]`` tokens on the ``grid x grid`` layout (adaptive average)."""
    g = F.adaptive_avg_pool2d(tokens_to_grid(x), grid)
    return g.flatten(2).transpose(1, 2)


def pool_similarity(sim: torch.Tensor, grid: int, key_reduce: str = "mean") -> torch.Tensor:
    """Resample a token-token matrix ``[B, N, N]`` (N = g*g) to ``[B, grid^2, grid^2]``.

    Rows (queries) are averaged over each coarse token's region; columns (keys) are averaged
    (``key_reduce='mean'``, for similarities) or summed (``'sum'``, so attention rows still sum to 1).
    """
    b, n, _ = sim.shape
    g = math.isqrt(n)
    if g * g != n:
        raise ValueError(f"similarity [B, N, N] with N={n}: not a square token grid")
    if g == grid:
        return sim.float()
    area = (g / grid) ** 2
    x = sim.float().reshape(b * n, 1, g, g)
    x = F.adaptive_avg_pool2d(x, grid).reshape(b, n, grid * grid)  # keys pooled
    if key_reduce == "sum":
        x = x * area
    x = x.transpose(1, 2).reshape(b * grid * grid, 1, g, g)
    x = F.adaptive_avg_pool2d(x, grid).reshape(b, grid * grid, grid * grid)  # queries pooled
    return x.transpose(1, 2)


def cosine_similarity_matrix(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, N, N]`` cosine similarities of every token pair."""
    z = F.normalize(tokens.float(), dim=-1)
    return z @ z.transpose(1, 2)


class FeatureAlign(nn.Module):
    """Learned linear projections student dims -> teacher dims, one per distilled layer."""

    def __init__(self, student_dims: list[int], teacher_dims: list[int]) -> None:
        super().__init__()
        if len(student_dims) != len(teacher_dims):
            raise ValueError("FeatureAlign: one student and one teacher dim per layer")
        self.proj = nn.ModuleList(nn.Linear(cs, ct) for cs, ct in zip(student_dims, teacher_dims, strict=True))

    def forward(self, tokens: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per layer ``[B, N, Cs]`` -> ``[B, N, Ct]``."""
        return [p(t) for p, t in zip(self.proj, tokens, strict=True)]


def feature_dim(x: torch.Tensor) -> int:
    """Channel count of search features in any layout :func:`tokens_to_grid` accepts."""
    return tokens_to_grid(x).shape[1]


__all__ = [
    "FeatureAlign",
    "cosine_similarity_matrix",
    "feature_dim",
    "grid_size",
    "pool_similarity",
    "pool_tokens",
    "tokens_to_grid",
]
