"""Per-frame box metrics and threshold curves, vectorised with numpy (no loop over frames).

Boxes are ``[N, 4]`` arrays of ``x, y, w, h`` (top-left corner, 0-based pixels). These functions
know nothing about protocols; :mod:`spiketrack.evaluation.protocols` combines them into the
EventVOT/LaSOT MATLAB rules and the pytracking rules.
"""

from __future__ import annotations

import numpy as np


def colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop`` with its rounding: the first half counts up from ``start``, the
    second half down from ``stop`` (so the last value is exactly ``stop``), the middle is their mean.

    The EventVOT/LaSOT toolkit builds its thresholds this way; copying it keeps ``IoU > θ`` ties identical.
    """
    n = int(np.floor((stop - start) / step + 1e-10))
    k = np.arange(n + 1, dtype=np.float64)
    values = np.where(k <= n / 2, start + k * step, stop - (n - k) * step)
    if n % 2 == 0:
        values[n // 2] = (start + stop) / 2
    return values


def centers(boxes: np.ndarray) -> np.ndarray:
    """Box centres ``(x + (w-1)/2, y + (h-1)/2)`` [N, 2] — the pixel-index convention of both toolkits."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def center_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance [N] between predicted and ground-truth centres, in pixels."""
    d = centers(pred) - centers(gt)
    return np.sqrt((d * d).sum(axis=1))


def normalized_center_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre distance [N] with each axis divided by the ground-truth size (x by w, y by h).

    Rows whose ground-truth width or height is zero give ``inf``/``nan``; protocols overwrite them.
    """
    gt = np.asarray(gt, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (centers(pred) - centers(gt)) / gt[:, 2:]
        return np.sqrt((d * d).sum(axis=1))


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Intersection over union [N] of two box lists.

    ``inter = max(0, min(x1+w1, x2+w2) - max(x1, x2)) * (same in y)``,
    ``IoU = inter / (area_p + area_g - inter)`` (the pixel-inclusive form of both toolkits,
    ``min(x1+w1-1, x2+w2-1) - max(x1, x2) + 1``, is the same number). NaN anywhere in a row gives NaN,
    which never passes a threshold. The result is capped at 1: rounding in ``(x + w) - x`` can push
    identical non-integer boxes a hair above 1, which would pass θ = 1. (MATLAB's ``min``/``max`` skip
    NaN, so its toolkit can give a half-NaN row an IoU above 1; spiketrack counts such rows as failures
    instead and says so.)
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    iw = np.maximum(0.0, np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2]) - np.maximum(p[:, 0], g[:, 0]))
    ih = np.maximum(0.0, np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3]) - np.maximum(p[:, 1], g[:, 1]))
    inter = iw * ih
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(inter / union, 1.0)


def fill_forward(boxes: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Replace every row flagged ``bad`` (row 0 never is) by the last earlier row that is not bad.

    Same result as the toolkits' sequential loop ``box[i] = box[i-1]``: a run of bad rows all take
    the last good row before the run.
    """
    bad = np.asarray(bad, dtype=bool).copy()
    if bad.size:
        bad[0] = False
    idx = np.where(bad, 0, np.arange(len(bad)))
    np.maximum.accumulate(idx, out=idx)
    return np.asarray(boxes)[idx]


def success_curve(ious: np.ndarray, length: int, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of the ``length`` frames with ``IoU > θ`` (strict) for every θ [len(thresholds)].

    Counted by sorting once and binary-searching every threshold (NaN never passes).
    """
    v = np.sort(np.asarray(ious, dtype=np.float64))  # NaN sorts last
    n_numbers = len(v) - int(np.isnan(v).sum())
    counts = n_numbers - np.searchsorted(v[:n_numbers], thresholds, side="right")
    return counts / float(length)


def precision_curve(errors: np.ndarray, length: int, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of the ``length`` frames with ``error <= τ`` for every τ [len(thresholds)] (NaN never passes)."""
    v = np.sort(np.asarray(errors, dtype=np.float64))
    counts = np.searchsorted(v, thresholds, side="right")  # NaN sorts after every τ
    return counts / float(length)
