"""Clean frames of an annotated object: whole enough and apart from the other objects.

A template cut where the target is half hidden, or where another object overlaps its box, shows parts of two
things; a tracker told to follow it cannot know which. The synthetic benchmark starts every test sequence on a
clean frame and the training sampler cuts templates only from clean frames (``data.template_min_visible``,
``data.template_max_overlap``). Visibility comes from the sequence's optional ``visible`` datasets (unknown:
the visibility rule is not applied); overlap from the boxes of the other annotated objects.
"""

from __future__ import annotations

import numpy as np


def overlap_share(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Largest share of each box's area covered by one of ``others``.

    boxes [F, 4] x, y, w, h; others [M, F, 4] (absent objects have box 0,0,0,0 and cover nothing) -> float [F].
    """
    if len(others) == 0:
        return np.zeros(len(boxes))
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    ix = np.clip(np.minimum(x1, others[..., 0] + others[..., 2]) - np.maximum(x0, others[..., 0]), 0, None)
    iy = np.clip(np.minimum(y1, others[..., 1] + others[..., 3]) - np.maximum(y0, others[..., 1]), 0, None)
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1e-9)
    return (ix * iy / area).max(axis=0)


def clean_frames(
    boxes: np.ndarray,
    absent: np.ndarray,
    visible: np.ndarray | None,
    others: np.ndarray,
    min_visible: float,
    max_overlap: float,
) -> np.ndarray:
    """bool [F]: the object is present, at least ``min_visible`` of its area is visible (where ``visible`` [F] is
    known) and no other object's box ([M, F, 4]) covers more than ``max_overlap`` of its box."""
    ok = (np.asarray(absent) == 0) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if visible is not None:
        ok &= np.asarray(visible) >= min_visible
    return ok & (overlap_share(np.asarray(boxes, np.float64), np.asarray(others, np.float64)) <= max_overlap)


__all__ = ["clean_frames", "overlap_share"]
