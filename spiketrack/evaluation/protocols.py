"""The two evaluation protocols: EventVOT/LaSOT MATLAB toolkit (default) and pytracking/OSTrack's Python analysis.

Both turn one sequence's predictions into three curves (success over IoU thresholds, precision over
pixel thresholds, normalised precision over normalised thresholds) and average curves over sequences.
They differ in how they repair predictions, which frames count, and how they average (docs/architecture.md, "Metric
protocol", "Differences at a glance").

EventVOT (docs/architecture.md, "Metric protocol"; the MATLAB toolkit shared by EventVOT, COESOT, VisEvent and LaSOT):
  * rows i >= 2 with (w <= 0 or h <= 0 or all four values NaN) and a NaN-free GT row take the previous
    row (sequentially, before frame 1 is overwritten); a row with only some NaN values is kept as is
    (MATLAB's ``if`` on a vector needs every element true) and fails every threshold;
  * frame 1's prediction := ground truth; predictions longer than the GT are truncated, shorter ones rejected;
  * GT rows with any value <= 0 (or NaN): IoU = -1, centre error = -1 (so they pass every precision
    threshold but fail every success threshold);
  * absent frames are removed, the denominator stays the full length L;
  * average over sequences skipping, per curve, sequences whose curve sums to 0.
pytracking (OSTrack ``lib/test/analysis/extract_results.py``, pytracking ``analysis/extract_results.py``):
  * NaN or negative sizes in predictions are errors; rows i >= 2 with w == 0 or h == 0 take the previous row;
  * predictions truncated or zero-padded to the GT length, then frame 1 := GT;
  * valid frame = GT w > 0 and h > 0 and target visible; invalid frames: IoU -1, centre error inf,
    normalised error -1; denominator the full length; plain mean over all sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spiketrack.evaluation.metrics import (
    center_errors,
    colon,
    fill_forward,
    iou,
    normalized_center_errors,
    precision_curve,
    success_curve,
)


class InvalidPrediction(ValueError):
    """A prediction the protocol refuses; ``rows`` are the 0-based offending rows."""

    def __init__(self, rows: np.ndarray, problem: str) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.problem = problem
        super().__init__(problem)


@dataclass(frozen=True)
class Protocol:
    """Thresholds and averaging rule of one protocol."""

    name: str
    success_thresholds: np.ndarray  # IoU thresholds; SR = mean of the success curve
    precision_thresholds: np.ndarray  # pixels; PR = curve at ``pr_index``
    norm_precision_thresholds: np.ndarray  # normalised distance; NPR = curve at ``npr_index``
    pr_index: int
    npr_index: int
    skip_zero_curves: bool  # EventVOT: drop sequences whose curve sums to 0 before averaging

    @property
    def pr_threshold(self) -> float:
        return float(self.precision_thresholds[self.pr_index])

    @property
    def npr_threshold(self) -> float:
        return float(self.norm_precision_thresholds[self.npr_index])


# EventVOT/LaSOT toolkit: thresholdSetOverlap = 0:0.05:1, thresholdSetError = 0:50, normalised 0:0.01:0.5;
# PR read at 20 px, NPR at 0.20 (Fan et al., "LaSOT", CVPR 2019; Wang et al., "EventVOT", CVPR 2024).
EVENTVOT = Protocol(
    name="eventvot",
    success_thresholds=colon(0.0, 0.05, 1.0),
    precision_thresholds=colon(0.0, 1.0, 50.0),
    norm_precision_thresholds=colon(0.0, 0.01, 0.5),
    pr_index=20,
    npr_index=20,
    skip_zero_curves=True,
)
# pytracking extract_results: torch.arange(0, 1.05, 0.05), arange(0, 51), arange(0, 51) / 100;
# plot_results reads precision and normalised precision at index 20 (Bhat et al., pytracking).
PYTRACKING = Protocol(
    name="pytracking",
    success_thresholds=np.arange(21, dtype=np.float64) * 0.05,
    precision_thresholds=np.arange(51, dtype=np.float64),
    norm_precision_thresholds=np.arange(51, dtype=np.float64) / 100.0,
    pr_index=20,
    npr_index=20,
    skip_zero_curves=False,
)
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (EVENTVOT, PYTRACKING)}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name`` ('eventvot' or 'pytracking')."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; expected one of {sorted(PROTOCOLS)}") from None


@dataclass
class SequenceCurves:
    """One tracker on one sequence: curves as fractions in [0, 1] and what the protocol changed."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    length: int
    # 0-based rows copied from the previous row, and rows kept but unusable (some NaN values)
    repaired_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    failed_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    length_note: str | None = None  # truncation/padding applied, if any
    missing: bool = False  # no result file: counted as all-failed

    def scores(self, protocol: Protocol) -> dict[str, float]:
        """SR/PR/NPR of this sequence alone, in percent."""
        return {
            "SR": float(self.success.mean() * 100.0),
            "PR": float(self.precision[protocol.pr_index] * 100.0),
            "NPR": float(self.norm_precision[protocol.npr_index] * 100.0),
        }


def failed_curves(protocol: Protocol, length: int) -> SequenceCurves:
    """Curves of a sequence without results (``--allow-missing``): every frame a failure."""
    return SequenceCurves(
        success=np.zeros(len(protocol.success_thresholds)),
        precision=np.zeros(len(protocol.precision_thresholds)),
        norm_precision=np.zeros(len(protocol.norm_precision_thresholds)),
        length=length,
        missing=True,
    )


def _as_boxes(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4], got shape {a.shape}")
    return a


def eventvot_curves(pred: np.ndarray, gt: np.ndarray, present: np.ndarray) -> SequenceCurves:
    """EventVOT/LaSOT MATLAB toolkit curves of one sequence.

    ``pred``/``gt`` [N, 4] x, y, w, h; ``present`` [L] bool, True where the target is visible
    (the EventVOT ``absent.txt`` convention: 1 = present). Predictions longer than the GT are
    truncated; shorter ones raise :class:`InvalidPrediction`.
    """
    gt = _as_boxes(gt)
    pred = _as_boxes(pred).copy()
    length = len(gt)
    present = np.asarray(present, dtype=bool)
    if present.shape != (length,):
        raise ValueError(f"present flags must have {length} entries, got {present.shape}")
    note = None
    if len(pred) > length:
        note = f"{len(pred)} rows for {length} frames: extra rows ignored"
        pred = pred[:length]
    elif len(pred) < length:
        raise InvalidPrediction(np.arange(len(pred), length), f"{len(pred)} rows for {length} frames")
    gt_has_nan = np.isnan(gt).any(axis=1)
    nan_row = np.isnan(pred).all(axis=1)
    bad = (nan_row | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)) & ~gt_has_nan
    bad[:1] = False
    pred = fill_forward(pred, bad)
    partial = np.isnan(pred).any(axis=1)
    pred[0] = gt[0]
    partial[0] = False
    valid = (gt > 0).all(axis=1)  # NaN > 0 is False: NaN rows are invalid too
    ov = np.where(valid, iou(pred, gt), -1.0)
    err = np.where(valid, center_errors(pred, gt), -1.0)
    nerr = np.where(valid, normalized_center_errors(pred, gt), -1.0)
    ov, err, nerr = ov[present], err[present], nerr[present]
    return SequenceCurves(
        success=success_curve(ov, length, EVENTVOT.success_thresholds),
        precision=precision_curve(err, length, EVENTVOT.precision_thresholds),
        norm_precision=precision_curve(nerr, length, EVENTVOT.norm_precision_thresholds),
        length=length,
        repaired_rows=np.flatnonzero(bad),
        failed_rows=np.flatnonzero(partial & present),
        length_note=note,
    )


def pytracking_curves(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None = None) -> SequenceCurves:
    """pytracking/OSTrack ``calc_seq_err_robust`` + ``extract_results`` curves of one sequence.

    ``visible`` [L] bool (``target_visible``; None = all visible). NaN predictions and negative
    sizes raise :class:`InvalidPrediction`, as pytracking raises on them.
    """
    gt = _as_boxes(gt)
    pred = _as_boxes(pred).copy()
    length = len(gt)
    visible = np.ones(length, bool) if visible is None else np.asarray(visible, dtype=bool)
    if visible.shape != (length,):
        raise ValueError(f"visible flags must have {length} entries, got {visible.shape}")
    if np.isnan(gt).any():
        raise ValueError("NaN in ground truth (pytracking refuses it)")
    nan_rows = np.flatnonzero(np.isnan(pred).any(axis=1))
    if nan_rows.size:
        raise InvalidPrediction(nan_rows, "NaN in prediction (pytracking protocol refuses it)")
    neg_rows = np.flatnonzero((pred[:, 2:] < 0).any(axis=1))
    if neg_rows.size:
        raise InvalidPrediction(neg_rows, "negative width or height (pytracking protocol refuses it)")
    bad = (pred[:, 2:] == 0).any(axis=1)
    bad[:1] = False
    pred = fill_forward(pred, bad)
    note = None
    if len(pred) > length:
        note = f"{len(pred)} rows for {length} frames: truncated"
        pred = pred[:length]
    elif len(pred) < length:
        note = f"{len(pred)} rows for {length} frames: padded with {length - len(pred)} zero boxes"
        pred = np.concatenate([pred, np.zeros((length - len(pred), 4))], axis=0)
    if length:
        pred[0] = gt[0]
    valid = (gt[:, 2] > 0) & (gt[:, 3] > 0) & visible
    ov = np.where(valid, iou(pred, gt), -1.0)
    err = np.where(valid, center_errors(pred, gt), np.inf)
    nerr = np.where(valid, normalized_center_errors(pred, gt), -1.0)
    return SequenceCurves(
        success=success_curve(ov, length, PYTRACKING.success_thresholds),
        precision=precision_curve(err, length, PYTRACKING.precision_thresholds),
        norm_precision=precision_curve(nerr, length, PYTRACKING.norm_precision_thresholds),
        length=length,
        repaired_rows=np.flatnonzero(bad),
        length_note=note,
    )


def sequence_curves(protocol: Protocol, pred: np.ndarray, gt: np.ndarray, absent: np.ndarray) -> SequenceCurves:
    """Curves of one sequence under ``protocol``; ``absent`` [L] bool, True where the target is NOT visible
    (the native convention; EventVOT's ``absent.txt`` is inverted when read)."""
    present = ~np.asarray(absent, dtype=bool)
    if protocol.name == "eventvot":
        return eventvot_curves(pred, gt, present)
    if protocol.name == "pytracking":
        return pytracking_curves(pred, gt, present)
    raise ValueError(f"unknown protocol {protocol.name!r}")


@dataclass
class Aggregate:
    """Scores in percent and the averaged curves (fractions) over a set of sequences."""

    SR: float
    PR: float
    NPR: float
    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    counted: dict[str, int]  # sequences entering each average (EventVOT skips zero curves)

    def scores(self) -> dict[str, float]:
        return {"SR": self.SR, "PR": self.PR, "NPR": self.NPR}


def _mean_curve(curves: np.ndarray, forced: np.ndarray, skip_zero: bool) -> tuple[np.ndarray, int]:
    keep = np.ones(len(curves), bool)
    if skip_zero:
        # MATLAB: aa = aa(sum(aa,2) > eps, :). Missing results (forced) stay in as all-failed.
        keep = (curves.sum(axis=1) > np.finfo(np.float64).eps) | forced
    if not keep.any():
        return np.zeros(curves.shape[1]), 0
    return curves[keep].mean(axis=0), int(keep.sum())


def aggregate(protocol: Protocol, items: list[SequenceCurves]) -> Aggregate:
    """Average sequences' curves under ``protocol`` and read SR/PR/NPR off the averaged curves."""
    n_s, n_p, n_n = (len(protocol.success_thresholds), len(protocol.precision_thresholds),
                     len(protocol.norm_precision_thresholds))
    if not items:
        return Aggregate(0.0, 0.0, 0.0, np.zeros(n_s), np.zeros(n_p), np.zeros(n_n), {"SR": 0, "PR": 0, "NPR": 0})
    forced = np.array([c.missing for c in items])
    succ, k_s = _mean_curve(np.stack([c.success for c in items]), forced, protocol.skip_zero_curves)
    prec, k_p = _mean_curve(np.stack([c.precision for c in items]), forced, protocol.skip_zero_curves)
    norm, k_n = _mean_curve(np.stack([c.norm_precision for c in items]), forced, protocol.skip_zero_curves)
    return Aggregate(
        SR=float(succ.mean() * 100.0),
        PR=float(prec[protocol.pr_index] * 100.0),
        NPR=float(norm[protocol.npr_index] * 100.0),
        success=succ,
        precision=prec,
        norm_precision=norm,
        counted={"SR": k_s, "PR": k_p, "NPR": k_n},
    )
