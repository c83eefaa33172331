"""The meter protocol: all that tracking knows about energy (docs/architecture.md, "Layers and data flow").

Tracking never imports :mod:`spiketrack.energy`; a caller that wants per-sequence operation counts hands
the runner a :data:`MeterFactory` (e.g. ``spiketrack.energy.meter.EnergyMeter.from_config``). The runner
builds one meter per sequence, the tracker wraps every model call in ``meter.measure(kind)`` and tells the
meter each frame's index (``set_frame``), and the runner stores ``meter.summary(frames)`` as the sequence's
``<name>_energy.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from torch import nn

from spiketrack.config import ExperimentConfig

KINDS = ("template_init", "template_update", "search")  # what a model call can be, in ``measure(kind)``
# Test-time tuning (tracking.ttt): its forward passes run with gradients inside ``measure(TUNING_KIND)``, and the
# re-encoded template after tuning; listed apart from KINDS (a meter reports it only when it happened).
TUNING_KIND = "test_time_tuning"
ALL_KINDS = (*KINDS, TUNING_KIND)


class TrackerMeter(Protocol):
    """Energy hook: ``measure(kind)`` wraps one model call (kind template_init | template_update | search |
    test_time_tuning; a tuning call runs with gradients, so the meter must not disable them for it)."""

    def measure(self, kind: str) -> AbstractContextManager[Any]: ...


class SequenceMeter(TrackerMeter, Protocol):
    """A meter for one whole sequence: frame attribution and a JSON-ready summary at the end."""

    def set_frame(self, k: int) -> None: ...

    def summary(self, frames: int | None = None) -> dict[str, Any]: ...


# model, config -> a fresh meter for one sequence (picklable when the runner uses worker processes)
MeterFactory = Callable[[nn.Module, ExperimentConfig], SequenceMeter]

__all__ = ["ALL_KINDS", "KINDS", "TUNING_KIND", "MeterFactory", "SequenceMeter", "TrackerMeter"]
