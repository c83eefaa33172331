"""Tests of spiketrack.data.esim: known answers of the ESIM model, noise, determinism, calibration on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spiketrack.data.esim import CALIBRATED_CONTRAST, EsimConfig, EventSimulator, simulate

EPS = 0.05
C = 0.2
EXACT = EsimConfig(contrast_on=C, contrast_off=C, contrast_sigma=0.0, log_eps=EPS)


def _intensity(log_level: float) -> float:
    """The intensity whose log(I + eps) is ``log_level``."""
    return math.exp(log_level) - EPS


def _pixel_video(log_levels: list[float]) -> np.ndarray:
    return np.array([[[_intensity(v)]] for v in log_levels], dtype=np.float64)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ramp_of_k_thresholds_gives_k_on_events_at_interpolated_times(k: int) -> None:
    l0 = math.log(0.3 + EPS)
    frames = _pixel_video([l0, l0 + k * C])
    ev = simulate(frames, np.array([0, 1000]), EXACT, 0)
    assert len(ev) == k
    assert np.all(ev.p == 1)
    expected = [math.ceil(1000 * i / k) for i in range(1, k + 1)]
    assert ev.t.tolist() == expected


def test_off_ramp_gives_off_events() -> None:
    l0 = math.log(0.8 + EPS)
    ev = simulate(_pixel_video([l0, l0 - 2 * C]), np.array([100, 300]), EXACT, 0)
    assert ev.p.tolist() == [0, 0]
    assert ev.t.tolist() == [200, 300]


def test_reference_carries_over_between_frames() -> None:
    # +1.5C then +1.5C: one crossing at 2/3 of the first interval, then crossings at 2C and 3C in the second.
    l0 = math.log(0.2 + EPS)
    ev = simulate(_pixel_video([l0, l0 + 1.5 * C, l0 + 3 * C]), np.array([0, 300, 600]), EXACT, 0)
    assert ev.t.tolist() == [200, 400, 600]
    assert ev.p.tolist() == [1, 1, 1]


def test_up_then_down_within_two_intervals() -> None:
    l0 = math.log(0.3 + EPS)
    ev = simulate(_pixel_video([l0, l0 + 2.5 * C, l0]), np.array([0, 500, 1000]), EXACT, 0)
    # Up: crossings at C and 2C (t = 200, 400); reference ends at 2C. Down from 2.5C to 0: OFF crossings at C and 0,
    # i.e. 1.5C and 2.5C below the peak -> t = 500 + 500 * 1.5/2.5 = 800 and 500 + 500 * 2.5/2.5 = 1000.
    assert ev.t.tolist() == [200, 400, 800, 1000]
    assert ev.p.tolist() == [1, 1, 0, 0]


def test_per_pixel_counts_are_floor_of_change_over_threshold() -> None:
    rng = np.random.default_rng(3)
    f0 = rng.uniform(0.05, 0.95, size=(7, 9))
    f1 = rng.uniform(0.05, 0.95, size=(7, 9))
    ev = simulate(np.stack([f0, f1]), np.array([0, 10_000]), EXACT, 0)
    change = np.log(f1 + EPS) - np.log(f0 + EPS)
    expected = np.floor(np.abs(change) / C + 1e-9).astype(int)
    counts = np.zeros((7, 9), int)
    np.add.at(counts, (ev.y.astype(int), ev.x.astype(int)), 1)
    assert np.array_equal(counts, expected)
    on = np.zeros((7, 9), int)
    np.add.at(on, (ev.y[ev.p == 1].astype(int), ev.x[ev.p == 1].astype(int)), 1)
    assert np.array_equal(on, np.where(change > 0, expected, 0))


def test_refractory_period_drops_events_but_moves_reference() -> None:
    l0 = math.log(0.1 + EPS)
    cfg = EsimConfig(contrast_on=C, contrast_off=C, contrast_sigma=0.0, log_eps=EPS, refractory_us=300)
    # 4C in 1000 us: crossings at 250, 500, 750, 1000; with a 300 us refractory period 250 and 750 survive.
    frames = _pixel_video([l0, l0 + 4 * C, l0 + 4 * C])
    ev = simulate(frames, np.array([0, 1000, 2000]), cfg, 0)
    assert ev.t.tolist() == [250, 750]
    # Without refractory all four are emitted; the dropped ones are not emitted later (no change afterwards).
    assert simulate(frames, np.array([0, 1000, 2000]), EXACT, 0).t.tolist() == [250, 500, 750, 1000]


def test_no_change_no_events() -> None:
    frame = np.random.default_rng(0).uniform(0, 1, size=(20, 30))
    ev = simulate(np.stack([frame] * 5), np.arange(5) * 1000, EsimConfig(), 0)
    assert len(ev) == 0


def test_events_sorted_inside_interval_and_on_sensor() -> None:
    rng = np.random.default_rng(1)
    frames = rng.uniform(0, 1, size=(6, 16, 24))
    times = np.array([10, 500, 1700, 2000, 2600, 5000])
    cfg = EsimConfig(noise_rate_hz=200.0, hot_pixel_fraction=0.02, refractory_us=50)
    ev = simulate(frames, times, cfg, 7)
    assert len(ev) > 100
    assert np.all(np.diff(ev.t) >= 0)
    assert ev.t.min() > times[0] and ev.t.max() <= times[-1]
    assert ev.x.max() < 24 and ev.y.max() < 16
    assert ev.t.dtype == np.int64 and ev.x.dtype == np.uint16 and ev.p.dtype == np.uint8


def test_deterministic_given_seed() -> None:
    rng = np.random.default_rng(2)
    frames = rng.uniform(0, 1, size=(4, 12, 12))
    times = np.array([0, 1000, 2000, 3000])
    cfg = EsimConfig(noise_rate_hz=100.0, hot_pixel_fraction=0.05)
    a, b = simulate(frames, times, cfg, 11), simulate(frames, times, cfg, 11)
    for f in ("t", "x", "y", "p"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    c = simulate(frames, times, cfg, 12)
    assert len(a) != len(c) or not np.array_equal(a.t, c.t)


def test_streaming_equals_batch() -> None:
    rng = np.random.default_rng(4)
    frames = rng.uniform(0, 1, size=(5, 10, 8))
    times = np.array([0, 400, 800, 1200, 1600])
    batch = simulate(frames, times, EsimConfig(), np.random.default_rng(9))
    sim = EventSimulator(8, 10, EsimConfig(), np.random.default_rng(9))
    sim.reset(frames[0], 0)
    parts = [sim.step(frames[i], int(times[i])) for i in range(1, 5)]
    assert np.array_equal(np.concatenate([p.t for p in parts]), batch.t)
    assert np.array_equal(np.concatenate([p.x for p in parts]), batch.x)


def test_background_noise_rate_and_polarity() -> None:
    frame = np.full((50, 40), 0.5)
    cfg = EsimConfig(noise_rate_hz=20.0)
    ev = simulate(np.stack([frame, frame]), np.array([0, 1_000_000]), cfg, 5)
    expected = 20.0 * 50 * 40  # events per second over the sensor
    assert abs(len(ev) - expected) < 5 * math.sqrt(expected)
    assert abs(ev.p.mean() - 0.5) < 0.03


def test_hot_pixels_fire_only_at_their_pixels() -> None:
    frame = np.full((30, 30), 0.5)
    cfg = EsimConfig(hot_pixel_fraction=0.01, hot_pixel_rate_hz=500.0)
    sim = EventSimulator(30, 30, cfg, np.random.default_rng(0))
    assert sim.hot_pixels.size == 9
    sim.reset(frame, 0)
    ev = sim.step(frame, 1_000_000)
    pix = ev.y.astype(int) * 30 + ev.x.astype(int)
    assert set(np.unique(pix)) <= set(sim.hot_pixels.tolist())
    assert abs(len(ev) - 9 * 500) < 5 * math.sqrt(9 * 500)
    # Each hot pixel keeps one polarity.
    for hp, pol in zip(sim.hot_pixels, sim.hot_polarity, strict=True):
        assert np.all(ev.p[pix == hp] == pol)


def test_thresholds_floored_at_minimum() -> None:
    cfg = EsimConfig(contrast_on=0.05, contrast_off=0.05, contrast_sigma=0.2, min_contrast=0.04)
    sim = EventSimulator(50, 50, cfg, np.random.default_rng(0))
    assert sim.c_on.min() == pytest.approx(0.04) and sim.c_off.min() == pytest.approx(0.04)
    assert np.mean(sim.c_on == 0.04) > 0.3  # most draws below the floor are clamped


def test_brightening_edge_gives_on_events_on_its_leading_side() -> None:
    # A bright bar moving right over a dark background: ON at its leading edge, OFF at its trailing edge.
    frames = np.full((3, 8, 40), 0.1)
    for i, x0 in enumerate((10, 12, 14)):
        frames[i, :, x0 : x0 + 6] = 0.9
    ev = simulate(frames, np.array([0, 1000, 2000]), EsimConfig(contrast_sigma=0.0), 0)
    assert set(np.unique(ev.x[ev.p == 1])) == {16, 17, 18, 19}
    assert set(np.unique(ev.x[ev.p == 0])) == {10, 11, 12, 13}


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        EsimConfig(contrast_on=0.0)
    sim = EventSimulator(4, 4, EsimConfig(), np.random.default_rng(0))
    with pytest.raises(RuntimeError):
        sim.step(np.zeros((4, 4)), 10)
    sim.reset(np.zeros((4, 4)), 10)
    with pytest.raises(ValueError):
        sim.step(np.zeros((4, 4)), 10)
    with pytest.raises(ValueError):
        sim.step(np.zeros((5, 4)), 20)


# ------------------------------------------------------------------------------------------------------------------
# Calibration on the real DAVIS346 recording (../shared/data next to the project root)
# ------------------------------------------------------------------------------------------------------------------

DAVIS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "davis346_road" / "recording.aedat4"


@pytest.fixture(scope="module")
def davis():
    if not DAVIS.is_file():
        pytest.skip(f"real DAVIS346 recording not found at {DAVIS} (shared test data is not shipped with the package)")
    pytest.importorskip("aedat", reason="the `aedat` package is needed to decode AEDAT4")
    from spiketrack.data.esim_calibration import load_davis_aedat4

    return load_davis_aedat4(DAVIS)


def test_davis_recording_decodes(davis) -> None:
    assert davis.frames.shape == (59, 260, 346) and (davis.width, davis.height) == (346, 260)
    assert len(davis.events) == 78830
    assert np.all(np.diff(davis.frame_times) > 0)


def test_calibrated_threshold_matches_real_events(davis) -> None:
    from spiketrack.data.esim_calibration import evaluate_contrast

    point = evaluate_contrast(davis, CALIBRATED_CONTRAST, EsimConfig(), seed=0, sigma=0.0)
    assert point.real_count == 77139  # real events in (first APS frame, last APS frame]
    assert point.correlation >= 0.85
    assert abs(point.count_ratio - 1.0) <= 0.25


def test_calibrated_threshold_is_the_sweep_optimum(davis) -> None:
    from spiketrack.data.esim_calibration import best_contrast, sweep_contrast

    points = sweep_contrast(davis, np.round(np.arange(0.20, 0.3001, 0.01), 3), EsimConfig(), seed=0)
    ratios = [p.count_ratio for p in points]
    assert all(a > b for a, b in zip(ratios, ratios[1:], strict=False))  # higher threshold, fewer events
    assert abs(best_contrast(points).contrast - CALIBRATED_CONTRAST) <= 0.01
