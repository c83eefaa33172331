"""Per-frame metrics: hand-computed values and a cross-check against the got10k toolkit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiketrack.evaluation.metrics import (
    center_errors,
    centers,
    colon,
    fill_forward,
    iou,
    normalized_center_errors,
    precision_curve,
    success_curve,
)


def test_center_uses_minus_one_convention():
    assert centers(np.array([[10.0, 20.0, 5.0, 9.0]])).tolist() == [[12.0, 24.0]]


def test_iou_hand_computed():
    gt = np.array([[5, 5, 10, 10], [0, 0, 10, 10], [10, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [2, 2, 4, 4], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(iou(pred, gt), [25 / 175, 16 / 100, 0.0, 1.0])


def test_iou_nan_row_is_nan():
    out = iou(np.array([[np.nan, 0, 10, 10]]), np.array([[0, 0, 20, 10]], float))
    assert np.isnan(out[0])


def test_center_errors_hand_computed():
    gt = np.array([[0, 0, 10, 20]], float)
    pred = np.array([[3, 4, 10, 20]], float)
    assert center_errors(pred, gt)[0] == pytest.approx(5.0)
    # per axis: 3/10 and 4/20
    assert normalized_center_errors(pred, gt)[0] == pytest.approx(np.hypot(0.3, 0.2))


def test_fill_forward_runs_take_last_good_row():
    boxes = np.arange(6)[:, None] * np.ones((1, 4))
    bad = np.array([True, False, True, True, False, True])  # row 0 is never replaced
    assert fill_forward(boxes, bad)[:, 0].tolist() == [0, 1, 1, 1, 4, 4]


def test_colon_matches_matlab_values():
    v = colon(0.0, 0.05, 1.0)
    assert len(v) == 21 and v[0] == 0.0 and v[-1] == 1.0 and v[10] == 0.5
    # first half counts up from 0, second half down from 1 (MATLAB colon algorithm)
    assert v[3] == 3 * 0.05 and v[17] == 1.0 - 3 * 0.05
    assert colon(0.0, 0.01, 0.5)[20] == 20 * 0.01
    assert colon(0.0, 1.0, 50.0).tolist() == list(range(51))


def test_curves_strict_success_and_inclusive_precision():
    thr = np.array([0.0, 0.5, 1.0])
    # IoU exactly 0.5 does not pass 0.5 (strict); IoU 0 does not pass 0
    assert success_curve(np.array([0.5, 0.0, 1.0]), 4, thr).tolist() == [2 / 4, 1 / 4, 0.0]
    # error exactly 20 passes 20 (<=)
    assert precision_curve(np.array([20.0, 20.5]), 2, np.array([20.0, 21.0])).tolist() == [0.5, 1.0]


boxes = st.tuples(
    st.floats(0, 200), st.floats(0, 200), st.floats(1, 100), st.floats(1, 100)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(boxes, boxes), min_size=1, max_size=20))
def test_cross_check_got10k_metrics(pairs):
    from got10k.utils.metrics import center_error, rect_iou

    a = np.array([p[0] for p in pairs], float)
    b = np.array([p[1] for p in pairs], float)
    np.testing.assert_allclose(iou(a, b), rect_iou(a.copy(), b.copy()), atol=1e-9)
    np.testing.assert_allclose(center_errors(a, b), center_error(a, b), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-2, 60), st.just(np.nan), st.just(np.inf), st.sampled_from([0.0, 0.5, 20.0, 1.0])),
             max_size=40)
)
def test_curves_equal_direct_counting(values):
    """The sort/search counting equals the definition #{v > θ} and #{v <= τ}, NaN and inf included."""
    v = np.array(values, dtype=np.float64)
    thr = np.concatenate([colon(0.0, 0.05, 1.0), np.arange(51.0)])
    n = max(len(v), 1)
    np.testing.assert_array_equal(success_curve(v, n, thr), (v[:, None] > thr[None, :]).sum(0) / n)
    np.testing.assert_array_equal(precision_curve(v, n, thr), (v[:, None] <= thr[None, :]).sum(0) / n)
