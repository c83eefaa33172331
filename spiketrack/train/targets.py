"""Gaussian centre-heatmap targets as CenterNet and OSTrack build them.

OSTrack (Ye et al., ECCV 2022) trains its centre head with CenterNet's targets (Zhou et al., "Objects as
Points", 2019): on the ``Hf x Wf`` feature grid (search_size / 16) the box centre cell gets 1 and its
neighbours ``exp(-(dx^2 + dy^2) / (2 sigma^2))`` with ``sigma = (2r + 1) / 6`` and the radius ``r`` from
:func:`gaussian_radius` at minimum overlap 0.7.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_OVERLAP = 0.7  # CenterNet / OSTrack gaussian_radius(min_overlap=0.7)


def gaussian_radius(height: float, width: float, min_overlap: float = MIN_OVERLAP) -> float:
    """Largest centre displacement (in cells) that keeps IoU >= ``min_overlap`` for a box of this size.

    CenterNet's three-case bound (corners both inside, both outside, one each); the formula is kept
    exactly as CenterNet and OSTrack use it (including its ``/2`` rather than ``/(2a)``), so targets match
    theirs.
    """
    h, w = float(height), float(width)
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(max(b1 * b1 - 4 * c1, 0.0))) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(max(b2 * b2 - 16 * c2, 0.0))) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(max(b3 * b3 - 4 * a3 * c3, 0.0))) / 2
    return min(r1, r2, r3)


def gaussian_heatmap(box_cxcywh: np.ndarray, size: int) -> np.ndarray:
    """One ``[size, size]`` float32 heatmap for a box (cx, cy, w, h) normalised to the crop.

    The centre cell ``floor(c * size)`` (clipped to the grid) is exactly 1; the Gaussian radius is
    ``max(0, int(gaussian_radius(h*size, w*size)))`` cells, drawn only within that radius, as CenterNet's
    ``draw_umich_gaussian``.
    """
    cx, cy, w, h = (float(v) for v in box_cxcywh)
    heat = np.zeros((size, size), dtype=np.float32)
    radius = max(0, int(gaussian_radius(h * size, w * size)))
    ix = min(max(int(math.floor(cx * size)), 0), size - 1)
    iy = min(max(int(math.floor(cy * size)), 0), size - 1)
    sigma = (2 * radius + 1) / 6
    x0, x1 = max(ix - radius, 0), min(ix + radius + 1, size)
    y0, y1 = max(iy - radius, 0), min(iy + radius + 1, size)
    dx = np.arange(x0, x1) - ix
    dy = np.arange(y0, y1) - iy
    g = np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma * sigma))
    g[np.abs(g) < np.finfo(np.float32).eps * g.max()] = 0  # CenterNet zeroes the negligible tail
    heat[y0:y1, x0:x1] = g
    return heat


def heatmap_targets(boxes_cxcywh: np.ndarray, size: int) -> torch.Tensor:
    """``[N, 4]`` normalised boxes -> ``[N, 1, size, size]`` heatmaps."""
    boxes = np.asarray(boxes_cxcywh, dtype=np.float64).reshape(-1, 4)
    return torch.from_numpy(np.stack([gaussian_heatmap(b, size) for b in boxes])[:, None])


__all__ = ["MIN_OVERLAP", "gaussian_heatmap", "gaussian_radius", "heatmap_targets"]
