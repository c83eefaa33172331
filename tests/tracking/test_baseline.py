"""Event-density baseline on hand-made event streams: follows a moving blob, holds on empty frames."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.events import EventArray
from spiketrack.evaluation.metrics import center_errors, iou
from spiketrack.tracking.baseline import EventDensityParams, EventDensityTracker
from spiketrack.tracking.frame import TrackingFrame

W, H = 128, 96
SIZE = 16.0


def blob_frame(k, centers, rng, n_blob=150, n_noise=40, sigma=3.0):
    """Events of frame k: Gaussian blobs around ``centers`` plus uniform noise."""
    xs, ys = [], []
    for cx, cy in centers:
        xs.append(rng.normal(cx, sigma, n_blob))
        ys.append(rng.normal(cy, sigma, n_blob))
    xs.append(rng.uniform(0, W, n_noise))
    ys.append(rng.uniform(0, H, n_noise))
    x = np.clip(np.concatenate(xs), 0, W - 1).astype(int)
    y = np.clip(np.concatenate(ys), 0, H - 1).astype(int)
    t = np.sort(rng.integers(k * 1000 + 1, (k + 1) * 1000 + 1, len(x)))
    ev = EventArray.from_arrays(t, x, y, rng.integers(0, 2, len(x)))
    return TrackingFrame(index=k, events=ev, t0=k * 1000, t1=(k + 1) * 1000, width=W, height=H)


def box_at(cx, cy):
    return np.array([cx - SIZE / 2, cy - SIZE / 2, SIZE, SIZE])


def test_follows_moving_blob():
    rng = np.random.default_rng(0)
    path = [(20 + 3.0 * k, 30 + 1.5 * k) for k in range(25)]
    tracker = EventDensityTracker()
    tracker.initialize(blob_frame(0, [path[0]], rng), box_at(*path[0]))
    pred, gt = [], []
    for k in range(1, 25):
        box, score = tracker.track(blob_frame(k, [path[k]], rng))
        assert box.shape == (4,) and 0.0 <= score <= 1.0
        pred.append(box)
        gt.append(box_at(*path[k]))
    pred, gt = np.array(pred), np.array(gt)
    assert iou(pred, gt).min() > 0.5
    assert center_errors(pred, gt)[-1] < 3.0


def test_empty_frame_keeps_box_with_low_score():
    rng = np.random.default_rng(1)
    tracker = EventDensityTracker()
    start = box_at(60, 40)
    tracker.initialize(blob_frame(0, [(60, 40)], rng), start)
    empty = TrackingFrame(index=1, events=EventArray.empty(), t0=1000, t1=2000, width=W, height=H)
    box, score = tracker.track(empty)
    np.testing.assert_allclose(box, start)
    assert score == pytest.approx(0.5)
    _, score2 = tracker.track(empty)
    assert score2 == pytest.approx(0.25)


def test_distractor_outside_search_area_is_ignored_and_prior_prefers_near():
    rng = np.random.default_rng(2)
    tracker = EventDensityTracker()
    tracker.initialize(blob_frame(0, [(30, 40)], rng), box_at(30, 40))
    # target moved 4 px; a much denser blob sits 70 px away (outside 3 box sizes)
    frame = blob_frame(1, [(34, 40), (100, 40), (100, 40), (100, 40)], rng)
    box, _ = tracker.track(frame)
    assert center_errors(box[None], box_at(34, 40)[None])[0] < 3.0
    # two equal blobs inside the search area: the Gaussian prior picks the nearer one
    tracker = EventDensityTracker()
    tracker.initialize(blob_frame(0, [(60, 48)], rng), box_at(60, 48))
    box, _ = tracker.track(blob_frame(1, [(64, 48), (40, 48)], rng))
    assert center_errors(box[None], box_at(64, 48)[None])[0] < 3.0


def test_size_adapts_mildly_and_can_be_fixed():
    rng = np.random.default_rng(3)
    tracker = EventDensityTracker()
    tracker.initialize(blob_frame(0, [(60, 48)], rng), box_at(60, 48))
    box, _ = tracker.track(blob_frame(1, [(60, 48)], rng, sigma=1.0))  # tighter blob than the box
    assert SIZE * 0.99 - 1e-9 <= box[2] < SIZE  # shrinks, by at most 1% (rate 0.1 x cap 10%)
    fixed = EventDensityTracker(EventDensityParams(size_rate=0.0))
    fixed.initialize(blob_frame(0, [(60, 48)], rng), box_at(60, 48))
    box, _ = fixed.track(blob_frame(1, [(60, 48)], rng, sigma=1.0))
    assert box[2] == SIZE and box[3] == SIZE
