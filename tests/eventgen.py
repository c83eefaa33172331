"""Small event streams for tests (a module of its own: several test folders have a conftest.py, so
``from conftest import ...`` would depend on collection order)."""

from __future__ import annotations

import numpy as np

from spiketrack.data.events import EventArray


def make_events(n: int, width: int, height: int, t_end: int, seed: int = 0) -> EventArray:
    """Uniform random events, time-sorted, over ``(0, t_end]``."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(1, t_end + 1, n))
    return EventArray.from_arrays(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))
