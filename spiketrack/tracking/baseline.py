"""Event-density tracker: a non-learned baseline that moves the box to the densest event cluster nearby.

Each frame it counts the frame's events on a pixel grid over a search area of ``search_factor`` box
sizes around the last box, sums the counts over every box-sized window (integral image), weights the
sums with a Gaussian prior around the last centre, and takes the best window. The new centre is the
event centroid inside that window (sub-pixel); the size adapts mildly towards the spread of those
events. A window without enough events keeps the last box with a low score. Everything is numpy and
vectorised; there is no learning, so any learned tracker must clearly beat it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spiketrack.tracking.frame import TrackingFrame

_UNIFORM_STD_TO_WIDTH = float(np.sqrt(12.0))  # width of a uniform distribution with unit standard deviation


@dataclass
class EventDensityParams:
    """Knobs of :class:`EventDensityTracker` (defaults tuned on synthetic moving blobs)."""

    search_factor: float = 3.0  # search area = this many box sizes around the last centre
    prior_sigma: float = 0.75  # Gaussian prior width, in box sizes, around the last centre
    size_rate: float = 0.1  # how fast w, h follow the event spread (0 = fixed size)
    max_size_change: float = 0.1  # per-frame relative size change at most
    min_events: int = 3  # fewer events in the best window: keep the last box
    min_size: float = 4.0  # pixels
    empty_score_decay: float = 0.5  # score multiplier on frames without enough events


class EventDensityTracker:
    """``initialize(frame, box)`` then ``track(frame) -> (box, score)``; boxes are x, y, w, h (top-left, px)."""

    name = "event-density"

    def __init__(self, params: EventDensityParams | None = None) -> None:
        self.params = params or EventDensityParams()
        self.center = np.zeros(2)  # cx, cy (continuous coordinates: pixel i covers [i, i+1))
        self.size = np.ones(2)  # w, h
        self.score = 0.0

    @property
    def box(self) -> np.ndarray:
        """Current box x, y, w, h (float64 [4])."""
        return np.concatenate([self.center - self.size / 2.0, self.size])

    def initialize(self, frame: TrackingFrame, box: np.ndarray | list[float]) -> None:
        """Start from the ground-truth ``box`` (x, y, w, h) of the first frame."""
        b = np.asarray(box, dtype=np.float64).reshape(4)
        self.size = np.maximum(b[2:], self.params.min_size)
        self.center = b[:2] + b[2:] / 2.0
        self.score = 1.0

    def _search_area(self, frame: TrackingFrame) -> tuple[int, int, int, int]:
        half = self.size * self.params.search_factor / 2.0
        x0 = int(np.clip(np.floor(self.center[0] - half[0]), 0, max(frame.width - 1, 0)))
        y0 = int(np.clip(np.floor(self.center[1] - half[1]), 0, max(frame.height - 1, 0)))
        x1 = int(np.clip(np.ceil(self.center[0] + half[0]), x0 + 1, frame.width))
        y1 = int(np.clip(np.ceil(self.center[1] + half[1]), y0 + 1, frame.height))
        return x0, y0, x1, y1

    def _keep(self) -> tuple[np.ndarray, float]:
        self.score *= self.params.empty_score_decay
        return self.box, self.score

    def track(self, frame: TrackingFrame) -> tuple[np.ndarray, float]:
        """Box (x, y, w, h) and a confidence in [0, 1] for ``frame``."""
        p = self.params
        x0, y0, x1, y1 = self._search_area(frame)
        ev = frame.events
        ex = np.asarray(ev.x, dtype=np.int64)
        ey = np.asarray(ev.y, dtype=np.int64)
        inside = (ex >= x0) & (ex < x1) & (ey >= y0) & (ey < y1)
        ex, ey = ex[inside] - x0, ey[inside] - y0
        if ex.size < p.min_events:
            return self._keep()
        sw, sh = x1 - x0, y1 - y0
        counts = np.bincount(ey * sw + ex, minlength=sw * sh).reshape(sh, sw).astype(np.float64)
        # Box-sized window sums via an integral image: window (r, c) covers rows r..r+bh-1, cols c..c+bw-1.
        bw = int(np.clip(round(self.size[0]), 1, sw))
        bh = int(np.clip(round(self.size[1]), 1, sh))
        integral = np.zeros((sh + 1, sw + 1))
        integral[1:, 1:] = counts.cumsum(0).cumsum(1)
        sums = integral[bh:, bw:] - integral[:-bh, bw:] - integral[bh:, :-bw] + integral[:-bh, :-bw]
        rows = np.arange(sums.shape[0]) + y0 + bh / 2.0  # window centres in image coordinates
        cols = np.arange(sums.shape[1]) + x0 + bw / 2.0
        sigma = p.prior_sigma * self.size
        prior_y = np.exp(-0.5 * ((rows - self.center[1]) / sigma[1]) ** 2)
        prior_x = np.exp(-0.5 * ((cols - self.center[0]) / sigma[0]) ** 2)
        r, c = np.unravel_index(np.argmax(sums * prior_y[:, None] * prior_x[None, :]), sums.shape)
        in_box = (ex >= c) & (ex < c + bw) & (ey >= r) & (ey < r + bh)
        n_box = int(in_box.sum())
        if n_box < p.min_events:
            return self._keep()
        px = ex[in_box] + x0 + 0.5
        py = ey[in_box] + y0 + 0.5
        self.center = np.array([px.mean(), py.mean()])
        if p.size_rate > 0 and n_box > 1:
            spread = np.array([px.std(), py.std()]) * _UNIFORM_STD_TO_WIDTH
            target = np.clip(spread, self.size * (1 - p.max_size_change), self.size * (1 + p.max_size_change))
            self.size = np.maximum((1 - p.size_rate) * self.size + p.size_rate * target, p.min_size)
        self.center = np.clip(self.center, 0.0, [frame.width, frame.height])
        self.score = float(n_box / ex.size)
        return self.box, self.score
