"""EventVOT (MATLAB toolkit) and pytracking protocol rules, each on a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiketrack.evaluation.protocols import (
    EVENTVOT,
    PYTRACKING,
    InvalidPrediction,
    aggregate,
    eventvot_curves,
    failed_curves,
    pytracking_curves,
    sequence_curves,
)

GT_BOX = [10.0, 10.0, 20.0, 20.0]
PERFECT_SR = 100.0 * 20 / 21  # IoU = 1 passes every threshold but θ = 1 (strict IoU > θ)


def gt_rows(n: int) -> np.ndarray:
    return np.tile(np.array(GT_BOX), (n, 1))


def ev(pred, gt, absent=None):
    gt = np.asarray(gt, float)
    absent = np.zeros(len(gt), bool) if absent is None else np.asarray(absent, bool)
    return sequence_curves(EVENTVOT, np.asarray(pred, float), gt, absent).scores(EVENTVOT)


def pt(pred, gt, absent=None):
    gt = np.asarray(gt, float)
    absent = np.zeros(len(gt), bool) if absent is None else np.asarray(absent, bool)
    return sequence_curves(PYTRACKING, np.asarray(pred, float), gt, absent).scores(PYTRACKING)


def far(n: int) -> np.ndarray:
    return np.tile(np.array([150.0, 150.0, 20.0, 20.0]), (n, 1))


# ---------------------------------------------------------------- repair
def test_eventvot_repair_nan_zero_negative_rows_take_previous_row():
    gt = gt_rows(5)
    pred = gt.copy()
    pred[0] = [100, 100, 5, 5]  # frame 1: replaced by GT anyway
    pred[2] = np.nan
    pred[3] = [10, 10, 0, 20]
    pred[4] = [10, 10, 20, -1]
    c = eventvot_curves(pred, gt, np.ones(5, bool))
    assert c.repaired_rows.tolist() == [2, 3, 4]
    s = c.scores(EVENTVOT)
    assert s == pytest.approx({"SR": PERFECT_SR, "PR": 100.0, "NPR": 100.0})


def test_eventvot_repair_run_takes_last_good_row():
    gt = gt_rows(5)
    pred = gt.copy()
    pred[1] = [40, 10, 20, 20]  # 30 px off
    pred[2:] = np.nan  # a run: all copy row 2 (1-based), which is 30 px off
    assert ev(pred, gt)["PR"] == pytest.approx(100 * 1 / 5)


def test_eventvot_repair_happens_before_frame1_is_set_to_gt():
    gt = gt_rows(4)
    pred = np.full((4, 4), np.nan)
    pred[0] = [40, 40, 20, 20]  # frame 1's own prediction, 42.4 px off
    # rows 2..4 copy frame 1's *prediction* (the toolkit repairs first, then overwrites frame 1)
    assert ev(pred, gt)["PR"] == pytest.approx(25.0)


def test_eventvot_partial_nan_row_is_a_failure_not_repaired():
    gt = gt_rows(2)
    pred = gt.copy()
    pred[1, 0] = np.nan
    c = eventvot_curves(pred, gt, np.ones(2, bool))
    assert c.repaired_rows.size == 0 and c.failed_rows.tolist() == [1]
    assert c.scores(EVENTVOT) == pytest.approx({"SR": PERFECT_SR / 2, "PR": 50.0, "NPR": 50.0})


def test_pytracking_refuses_nan_and_negative_repairs_zero():
    gt = gt_rows(3)
    pred = gt.copy()
    pred[2] = [10, 10, 20, -1]
    with pytest.raises(InvalidPrediction) as exc:
        pytracking_curves(pred, gt)
    assert exc.value.rows.tolist() == [2]
    pred[2] = np.nan
    with pytest.raises(InvalidPrediction):
        pytracking_curves(pred, gt)
    pred[1] = [40, 10, 20, 20]
    pred[2] = [10, 10, 0, 20]  # zero width: copies row 2 (1-based), 30 px off
    c = pytracking_curves(pred, gt)
    assert c.repaired_rows.tolist() == [2]
    assert c.scores(PYTRACKING)["PR"] == pytest.approx(100 / 3)


# ---------------------------------------------------------------- frame 1 := GT
@pytest.mark.parametrize("fn", [ev, pt])
def test_frame1_is_ground_truth(fn):
    s = fn(far(4), gt_rows(4))
    assert s == pytest.approx({"SR": PERFECT_SR / 4, "PR": 25.0, "NPR": 25.0})


# ---------------------------------------------------------------- absent frames
def test_eventvot_absent_removed_but_counted_in_denominator():
    gt = gt_rows(4)
    gt[2] = 0
    absent = [False, False, True, False]
    assert ev(gt, gt, absent) == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 75.0, "NPR": 75.0})


def test_pytracking_absent_frame_is_invalid_iou_fail_err_inf_norm_pass():
    gt = gt_rows(4)
    gt[2] = 0
    absent = [False, False, True, False]
    # invalid: IoU -1 (fails), centre error inf (fails), normalised error -1 (passes every threshold)
    assert pt(gt, gt, absent) == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 75.0, "NPR": 100.0})


def test_pytracking_visible_flag_makes_frame_invalid_even_with_a_box():
    gt = gt_rows(4)
    absent = [False, True, False, False]
    assert pt(gt, gt, absent)["PR"] == pytest.approx(75.0)


# ---------------------------------------------------------------- GT rows with values <= 0
def test_eventvot_gt_touching_border_gets_iou_and_error_minus_one():
    gt = gt_rows(4)
    gt[2] = [0, 10, 20, 20]  # x = 0: the target touches the left image border
    pred = gt.copy()
    pred[2] = [150, 150, 20, 20]  # far away, yet err = -1 <= 20 counts for PR/NPR
    s = ev(pred, gt)
    assert s == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 100.0, "NPR": 100.0})
    # pytracking only checks w, h > 0: the same frame is a normal, failed frame
    assert pt(pred, gt) == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 75.0, "NPR": 75.0})


def test_gt_zero_row_not_marked_absent():
    gt = gt_rows(4)
    gt[3] = 0
    pred = far(4)
    pred[:3] = gt[:3]
    assert ev(pred, gt) == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 100.0, "NPR": 100.0})
    assert pt(pred, gt) == pytest.approx({"SR": PERFECT_SR * 3 / 4, "PR": 75.0, "NPR": 100.0})


# ---------------------------------------------------------------- thresholds
@pytest.mark.parametrize("fn", [ev, pt])
def test_success_is_strict(fn):
    gt = np.array([[1, 1, 10, 10], [1, 1, 10, 10]], float)  # x, y > 0: valid for both protocols
    pred = np.array([[1, 1, 10, 10], [1, 1, 5, 10]], float)  # IoU exactly 0.5 on frame 2
    # frame 1: 20 thresholds; frame 2: θ = 0, 0.05, ..., 0.45 (10 thresholds), not 0.5
    assert fn(pred, gt)["SR"] == pytest.approx(100 * 30 / 42)


@pytest.mark.parametrize("fn", [ev, pt])
def test_npr_at_020_is_inclusive(fn):
    gt = np.array([[1, 1, 10, 10]] * 3, float)
    pred = np.array([[1, 1, 10, 10], [3, 1, 10, 10], [4, 1, 10, 10]], float)  # 0.2 and 0.3 normalised
    assert fn(pred, gt)["NPR"] == pytest.approx(100 * 2 / 3)


@settings(max_examples=40, deadline=None)
@given(d2=st.integers(0, 80), axis=st.sampled_from([0, 1]))
def test_shift_changes_pr_exactly_when_crossing_20(d2, axis):
    d = d2 / 2.0  # half-pixel steps: exact in floating point
    gt = np.tile(np.array([100.0, 100.0, 200.0, 200.0]), (10, 1))
    pred = gt.copy()
    pred[:, axis] += d
    expected = 100.0 if d <= 20 else 10.0  # frame 1 is GT
    assert ev(pred, gt)["PR"] == pytest.approx(expected)
    assert pt(pred, gt)["PR"] == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 300), st.integers(1, 300), st.integers(1, 120), st.integers(1, 120)),
        min_size=1, max_size=30,
    )
)
def test_perfect_prediction_on_visible_sequence(rows):
    gt = np.array(rows, float)
    for fn in (ev, pt):
        # PR and NPR reach 100; SR tops out at 20/21 because no IoU exceeds θ = 1.
        assert fn(gt, gt) == pytest.approx({"SR": PERFECT_SR, "PR": 100.0, "NPR": 100.0})


# ---------------------------------------------------------------- lengths
def test_eventvot_length_rules():
    gt = gt_rows(3)
    c = eventvot_curves(np.vstack([gt, far(2)]), gt, np.ones(3, bool))
    assert c.length_note and c.scores(EVENTVOT)["PR"] == 100.0
    with pytest.raises(InvalidPrediction):
        eventvot_curves(gt[:2], gt, np.ones(3, bool))


def test_pytracking_pads_short_predictions_with_zero_boxes():
    gt = gt_rows(4)
    c = pytracking_curves(gt[:2], gt)
    assert "padded" in c.length_note
    assert c.scores(PYTRACKING) == pytest.approx({"SR": PERFECT_SR / 2, "PR": 50.0, "NPR": 50.0})
    c = pytracking_curves(np.vstack([gt, far(3)]), gt)
    assert "truncated" in c.length_note and c.scores(PYTRACKING)["PR"] == 100.0


# ---------------------------------------------------------------- averaging
def test_eventvot_skips_zero_curve_sequences_pytracking_does_not():
    gt_a = gt_rows(4)
    gt_b = gt_rows(4)
    gt_b[0] = 0
    absent_b = np.array([True, False, False, False])  # frame 1 absent: nothing to give it credit
    pred_b = far(4)
    a_ev = eventvot_curves(gt_a, gt_a, np.ones(4, bool))
    b_ev = eventvot_curves(pred_b, gt_b, ~absent_b)
    assert b_ev.success.sum() == 0 and b_ev.precision.sum() == 0
    agg = aggregate(EVENTVOT, [a_ev, b_ev])
    assert agg.scores() == pytest.approx({"SR": PERFECT_SR, "PR": 100.0, "NPR": 100.0})
    assert agg.counted == {"SR": 1, "PR": 1, "NPR": 1}

    a_pt = pytracking_curves(gt_a, gt_a)
    b_pt = pytracking_curves(pred_b, gt_b, ~absent_b)
    agg = aggregate(PYTRACKING, [a_pt, b_pt])
    # B: SR 0, PR 0, NPR 25 (its invalid frame 1 has normalised error -1)
    assert agg.scores() == pytest.approx({"SR": PERFECT_SR / 2, "PR": 50.0, "NPR": 62.5})


def test_missing_results_count_as_failed_even_under_eventvot():
    gt = gt_rows(4)
    agg = aggregate(EVENTVOT, [eventvot_curves(gt, gt, np.ones(4, bool)), failed_curves(EVENTVOT, 4)])
    assert agg.scores() == pytest.approx({"SR": PERFECT_SR / 2, "PR": 50.0, "NPR": 50.0})


def test_average_is_over_curves_then_read_at_threshold():
    gt = gt_rows(4)
    p1 = gt.copy()
    p1[1:, 0] += 25  # 25 px: fails PR at 20 but passes at 25
    c1 = eventvot_curves(p1, gt, np.ones(4, bool))
    c2 = eventvot_curves(gt, gt, np.ones(4, bool))
    agg = aggregate(EVENTVOT, [c1, c2])
    assert agg.PR == pytest.approx((25.0 + 100.0) / 2)
    assert agg.precision[25] == pytest.approx(1.0)


# ---------------------------------------------------------------- cross-check with got10k OTB curves
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(1, 200), st.floats(1, 200), st.floats(2, 80), st.floats(2, 80),
            st.floats(-30, 30), st.floats(-30, 30), st.floats(0.5, 1.5), st.floats(0.5, 1.5),
        ),
        min_size=2, max_size=40,
    )
)
def test_cross_check_got10k_otb_curves(rows):
    """Where the definitions coincide (all frames visible, GT > 0, valid predictions, frame 1 = GT),
    our success and precision curves equal got10k's ExperimentOTB curves."""
    from got10k.experiments.otb import ExperimentOTB
    from got10k.utils.metrics import center_error, rect_iou

    r = np.array(rows, float)
    gt = r[:, :4]
    pred = np.column_stack([gt[:, 0] + r[:, 4], gt[:, 1] + r[:, 5], gt[:, 2] * r[:, 6], gt[:, 3] * r[:, 7]])
    pred[0] = gt[0]
    exp = ExperimentOTB.__new__(ExperimentOTB)  # skip __init__ (it wants the OTB data)
    exp.nbins_iou, exp.nbins_ce = 21, 51
    succ, prec = exp._calc_curves(rect_iou(pred.copy(), gt.copy()), center_error(pred, gt))
    for fn, proto in ((eventvot_curves, EVENTVOT), (pytracking_curves, PYTRACKING)):
        c = fn(pred, gt, np.ones(len(gt), bool))
        np.testing.assert_allclose(c.success, succ, atol=1e-12)
        np.testing.assert_allclose(c.precision, prec, atol=1e-12)
