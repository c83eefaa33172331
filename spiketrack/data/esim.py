"""Event simulator after the ESIM model (Rebecq, Gehrig, Scaramuzza, "ESIM: an Open Event Camera Simulator", CoRL 2018).

Model, per pixel:

* log intensity ``L = log(I + eps)`` of the linear intensity ``I`` in [0, 1] (uint8 input is divided by 255);
* a reference level ``ref`` (the log intensity at the pixel's last event; ``L`` of the first frame at reset);
* ON and OFF thresholds ``C_on``, ``C_off`` drawn once per pixel from N(C, sigma_C) and floored at ``min_contrast``;
* between two frames ``L`` is interpolated linearly in time; every crossing of ``ref + k*C_on`` (ON) or
  ``ref - k*C_off`` (OFF) emits one event at the interpolated crossing time, so a pixel may fire several times
  between two frames; the reference moves by one threshold per crossing;
* refractory period: a crossing less than ``refractory_us`` after the pixel's last emitted event is dropped (the
  reference still moves, as in ESIM, so the pixel does not owe the event later);
* optional background activity ("shot noise"): Poisson events at ``noise_rate_hz`` per pixel with random
  polarity, and hot pixels: a fixed random subset firing at ``hot_pixel_rate_hz`` with a fixed polarity each.
  Noise events do not move the reference and ignore the refractory period.

Timestamps are integer microseconds: a crossing at real time ``t`` is stamped ``ceil(t)``, so the events of a
frame interval ``(t0, t1]`` stay inside it (frame windows of docs/architecture.md, "Sequence files"). Output events
are time-sorted (stable sort over a
deterministic generation order), so the result is a pure function of the inputs and the Generator's state.

Everything is vectorised over pixels with numpy; the only Python loops run over frames and over the crossing
index ``k`` (bounded by the largest number of crossings of any pixel in one interval).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spiketrack.data.events import P_DTYPE, T_DTYPE, XY_DTYPE, EventArray

# Contrast threshold measured on ../shared/data/davis346_road/recording.aedat4 (DAVIS346, static camera, road) with
# spiketrack.data.esim_calibration (sweep 0.15..0.35 step 0.005, seed 0, log_eps 0.05, sigma_C 0.03): the simulator on
# the 59 APS frames gives 77,046 events vs 77,139 real ones (ratio 0.999); per-pixel count maps correlate r = 0.921
# (raw) / 0.965 (both blurred with a 1 px Gaussian).
CALIBRATED_CONTRAST = 0.245

# Offset of log(I + eps) for I in [0, 1], chosen with the calibration above: it keeps the APS read noise of dark
# pixels (a few DN of 255) from dominating; with eps = 1e-3 the count-map correlation drops to about 0.2.
CALIBRATED_LOG_EPS = 0.05

# Numerical slack (log units) so a change of exactly k*C counts as k crossings despite float rounding.
_CROSSING_TOLERANCE = 1e-9
# Slack (µs) before rounding a crossing time up, so an exact integer time is not pushed to the next microsecond.
_TIME_TOLERANCE_US = 1e-6


@dataclass(frozen=True)
class EsimConfig:
    """Parameters of the simulated sensor.

    ``contrast_on``/``contrast_off`` are the nominal thresholds C (log units); ``contrast_sigma`` the per-pixel
    standard deviation; ``log_eps`` the offset in ``log(I + eps)`` for intensities in [0, 1].
    """

    contrast_on: float = CALIBRATED_CONTRAST
    contrast_off: float = CALIBRATED_CONTRAST
    contrast_sigma: float = 0.03  # per-pixel mismatch, ESIM's default order of magnitude (Rebecq et al. 2018)
    min_contrast: float = 0.01
    refractory_us: int = 0
    log_eps: float = CALIBRATED_LOG_EPS
    noise_rate_hz: float = 0.0  # background activity per pixel
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 100.0

    def with_contrast(self, c: float) -> EsimConfig:
        """The same sensor with both nominal thresholds set to ``c``."""
        return replace(self, contrast_on=c, contrast_off=c)

    def __post_init__(self) -> None:
        if self.contrast_on <= 0 or self.contrast_off <= 0 or self.min_contrast <= 0:
            raise ValueError("contrast thresholds and min_contrast must be positive")
        if self.contrast_sigma < 0 or self.refractory_us < 0 or self.log_eps <= 0:
            raise ValueError("contrast_sigma and refractory_us must be >= 0 and log_eps > 0")
        if self.noise_rate_hz < 0 or self.hot_pixel_rate_hz < 0 or not 0 <= self.hot_pixel_fraction <= 1:
            raise ValueError("noise rates must be >= 0 and hot_pixel_fraction in [0, 1]")


def log_intensity(frame: np.ndarray, eps: float) -> np.ndarray:
    """``log(I + eps)`` as float64 [H, W]; uint8 frames are scaled to [0, 1] first."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        intensity = frame.astype(np.float64) * (1.0 / 255.0)
    else:
        intensity = frame.astype(np.float64, copy=False)
    return np.log(intensity + eps)


class EventSimulator:
    """Streaming ESIM: ``reset`` with the first frame, then ``step`` with each later frame.

    Use it directly when frames are rendered on the fly (the synthetic benchmark renders sub-frames and never
    holds the whole video); :func:`simulate` wraps it for a stack of frames.
    """

    def __init__(self, width: int, height: int, config: EsimConfig, rng: np.random.Generator) -> None:
        self.width = int(width)
        self.height = int(height)
        self.config = config
        self.rng = rng
        n = self.width * self.height
        c = config
        self.c_on = np.maximum(rng.normal(c.contrast_on, c.contrast_sigma, n), c.min_contrast)
        self.c_off = np.maximum(rng.normal(c.contrast_off, c.contrast_sigma, n), c.min_contrast)
        self._c_on_min, self._c_off_min = float(self.c_on.min()), float(self.c_off.min())
        n_hot = int(round(c.hot_pixel_fraction * n))
        self.hot_pixels = np.sort(rng.choice(n, size=n_hot, replace=False)) if n_hot else np.zeros(0, np.int64)
        self.hot_polarity = rng.integers(0, 2, size=n_hot).astype(P_DTYPE)
        self.ref: np.ndarray | None = None
        self.last_log: np.ndarray | None = None
        self.last_event_t = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.t_prev: int | None = None

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start from ``frame`` at time ``t_us``: the reference becomes its log intensity; no events."""
        self._check_shape(frame)
        self.last_log = log_intensity(frame, self.config.log_eps).ravel()
        self.ref = self.last_log.copy()
        self.last_event_t[:] = np.iinfo(np.int64).min // 2
        self.t_prev = int(t_us)

    def step(self, frame: np.ndarray, t_us: int) -> EventArray:
        """Events in ``(t_prev, t_us]`` from the linear log-intensity change to ``frame``; time-sorted."""
        if self.ref is None or self.last_log is None or self.t_prev is None:
            raise RuntimeError("EventSimulator.step called before reset")
        self._check_shape(frame)
        t0, t1 = self.t_prev, int(t_us)
        if t1 <= t0:
            raise ValueError(f"frame times must increase: got {t1} after {t0}")
        l0 = self.last_log
        l1 = log_intensity(frame, self.config.log_eps).ravel()
        change = l1 - self.ref
        parts = [self._crossings(change, l0, l1, t0, t1, on=True), self._crossings(change, l0, l1, t0, t1, on=False)]
        parts.extend(self._noise(t0, t1))
        self.last_log = l1
        self.t_prev = t1
        pix = np.concatenate([p[0] for p in parts])
        ts = np.concatenate([p[1] for p in parts])
        pol = np.concatenate([p[2] for p in parts])
        order = np.argsort(ts, kind="stable")
        pix, ts, pol = pix[order], ts[order], pol[order]
        y, x = np.divmod(pix, self.width)
        return EventArray(ts.astype(T_DTYPE), x.astype(XY_DTYPE), y.astype(XY_DTYPE), pol.astype(P_DTYPE))

    # ------------------------------------------------------------------------------------------------

    def _check_shape(self, frame: np.ndarray) -> None:
        if np.shape(frame) != (self.height, self.width):
            raise ValueError(f"expected a {self.height}x{self.width} intensity frame, got shape {np.shape(frame)}")

    def _crossings(
        self, change: np.ndarray, l0: np.ndarray, l1: np.ndarray, t0: int, t1: int, *, on: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Threshold crossings of one polarity: (pixel index, int64 time, polarity). ``change = l1 - ref``."""
        assert self.ref is not None
        sign = 1.0 if on else -1.0
        thr_all, thr_min = (self.c_on, self._c_on_min) if on else (self.c_off, self._c_off_min)
        # Cheap pre-filter with the smallest threshold, then exact counts on the candidates.
        if on:
            pix = np.flatnonzero(change >= thr_min - _CROSSING_TOLERANCE)
        else:
            pix = np.flatnonzero(change <= -(thr_min - _CROSSING_TOLERANCE))
        thr = thr_all[pix]
        n = np.floor(sign * change[pix] / thr + _CROSSING_TOLERANCE).astype(np.int64)
        keep = n > 0
        pix, thr, n = pix[keep], thr[keep], n[keep]
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, P_DTYPE))
        if pix.size == 0:
            return empty
        ref = self.ref[pix]
        a = l0[pix]
        slope = l1[pix] - a  # log change over the interval; never 0 when a crossing exists
        duration = float(t1 - t0)
        refractory = self.config.refractory_us
        out_pix, out_t = [], []
        active = np.arange(pix.size)
        for k in range(1, int(n.max()) + 1):
            active = active[n[active] >= k]
            level = ref[active] + sign * k * thr[active]
            frac = np.clip((level - a[active]) / slope[active], 0.0, 1.0)
            t = np.ceil(t0 + frac * duration - _TIME_TOLERANCE_US).astype(np.int64)
            t = np.clip(t, t0 + 1, t1)
            p = pix[active]
            if refractory > 0:
                ok = t - self.last_event_t[p] >= refractory
                p, t = p[ok], t[ok]
            self.last_event_t[p] = t
            out_pix.append(p)
            out_t.append(t)
        self.ref[pix] = ref + sign * n * thr
        pix_all = np.concatenate(out_pix)
        return pix_all, np.concatenate(out_t), np.full(pix_all.size, 1 if on else 0, P_DTYPE)

    def _noise(self, t0: int, t1: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Background-activity and hot-pixel events in ``(t0, t1]``."""
        c = self.config
        seconds = (t1 - t0) * 1e-6
        out = []
        n_pix = self.width * self.height
        if c.noise_rate_hz > 0:
            count = int(self.rng.poisson(c.noise_rate_hz * seconds * n_pix))
            pix = self.rng.integers(0, n_pix, size=count)
            ts = self.rng.integers(t0 + 1, t1 + 1, size=count)
            pol = self.rng.integers(0, 2, size=count).astype(P_DTYPE)
            out.append((pix.astype(np.int64), ts.astype(np.int64), pol))
        if self.hot_pixels.size and c.hot_pixel_rate_hz > 0:
            counts = self.rng.poisson(c.hot_pixel_rate_hz * seconds, size=self.hot_pixels.size)
            pix = np.repeat(self.hot_pixels, counts)
            pol = np.repeat(self.hot_polarity, counts)
            ts = self.rng.integers(t0 + 1, t1 + 1, size=pix.size)
            out.append((pix.astype(np.int64), ts.astype(np.int64), pol))
        return out


def simulate(
    frames: np.ndarray,
    times_us: np.ndarray,
    config: EsimConfig | None = None,
    rng: np.random.Generator | int | None = 0,
) -> EventArray:
    """Events of a video: ``frames`` [F, H, W] intensity (uint8 or float in [0, 1]), ``times_us`` int64 [F].

    The first frame sets the reference; events cover ``(times_us[0], times_us[-1]]``. ``rng`` is a Generator or a
    seed; the same seed gives the same events.
    """
    frames = np.asarray(frames)
    times = np.asarray(times_us, dtype=np.int64)
    if frames.ndim != 3 or len(frames) != len(times):
        raise ValueError(f"expected frames [F, H, W] and F timestamps, got {frames.shape} and {times.shape}")
    if len(frames) == 0:
        return EventArray.empty()
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    sim = EventSimulator(frames.shape[2], frames.shape[1], config or EsimConfig(), gen)
    sim.reset(frames[0], int(times[0]))
    parts = [sim.step(frames[i], int(times[i])) for i in range(1, len(frames))]
    return EventArray.concatenate(parts)
