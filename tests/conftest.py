"""Shared pytest fixtures: small native sequence files made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spiketrack.data.events import EventArray

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_events(n: int, width: int, height: int, t_end: int, seed: int = 0) -> EventArray:
    """Uniform random events, time-sorted, over ``(0, t_end]``."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(1, t_end + 1, n))
    return EventArray.from_arrays(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


@pytest.fixture
def shared_data() -> Path:
    """The real recordings beside the project (skips where they are absent, e.g. on a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present beside the project checkout)")
    return SHARED_DATA
