"""TrackingFrame: what an online tracker receives for one annotated frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spiketrack.data.events import EventArray


@dataclass
class TrackingFrame:
    """Frame ``index`` of a sequence: its events (``t0 < t <= t1``, µs), the sensor size, optional RGB.

    ``rgb`` is uint8 [H, W, 3] where the sequence has intensity frames (teacher inputs), else None.
    """

    index: int
    events: EventArray
    t0: int
    t1: int
    width: int
    height: int
    rgb: np.ndarray | None = None
