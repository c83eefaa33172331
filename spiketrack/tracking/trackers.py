"""The non-learned trackers: one table, one row per tracker (the one place to add one).

Every tracker — these and :class:`~spiketrack.tracking.tracker.ModelTracker` around a trained model — follows one
protocol (:class:`~spiketrack.tracking.tracker.Tracker`: ``initialize(frame, box)``, ``track(frame)``), so the
runner, the probe and the quickstart drive them alike. A row says how to build the tracker from a config, whether
it needs intensity frames and which settings change its boxes (a results folder's identity).

- ``event-density``: boxes the densest event cluster near the last box; never looks at its template (the floor
  of "follow the salient moving thing"; :mod:`spiketrack.tracking.baseline`).
- ``ncc``: the first frame's template matched by normalised cross-correlation (:mod:`spiketrack.tracking.ncc`);
  follows appearance and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spiketrack.config import ExperimentConfig, to_dict
from spiketrack.tracking.baseline import EventDensityParams, EventDensityTracker
from spiketrack.tracking.ncc import NccTracker
from spiketrack.tracking.tracker import Tracker


@dataclass(frozen=True)
class NonLearnedTracker:
    """A tracker without a model: its name, a one-line description, how to build it from a config, whether it needs
    intensity frames, and the settings that change its boxes."""

    name: str
    description: str
    build: Callable[[ExperimentConfig], Tracker]
    needs_rgb: Callable[[ExperimentConfig], bool]
    settings: Callable[[ExperimentConfig], dict[str, Any]]


def _event_density(cfg: ExperimentConfig) -> Tracker:
    return EventDensityTracker(EventDensityParams(empty_score_decay=cfg.tracking.empty_score_decay))


def _ncc(cfg: ExperimentConfig) -> Tracker:
    return NccTracker(cfg.tracking.ncc, empty_score_decay=cfg.tracking.empty_score_decay)


NON_LEARNED: dict[str, NonLearnedTracker] = {
    t.name: t
    for t in (
        NonLearnedTracker(
            "event-density", "densest event cluster near the last box; ignores its template", _event_density,
            lambda cfg: False, lambda cfg: {"tracking.empty_score_decay": cfg.tracking.empty_score_decay},
        ),
        NonLearnedTracker(
            "ncc", "normalised cross-correlation of the first frame's template (tracking.ncc)", _ncc,
            lambda cfg: cfg.tracking.ncc.modality == "rgb",
            lambda cfg: {"tracking.empty_score_decay": cfg.tracking.empty_score_decay,
                         **{f"tracking.ncc.{k}": v for k, v in to_dict(cfg.tracking.ncc).items()}},
        ),
    )
}
ALIASES = {"baseline": "event-density"}  # the event-density tracker's name before the NCC matcher existed


def non_learned(name: object) -> NonLearnedTracker | None:
    """The non-learned tracker called ``name`` (or one of its :data:`ALIASES`), None for anything else."""
    if isinstance(name, NonLearnedTracker):
        return name
    if not isinstance(name, str):
        return None
    return NON_LEARNED.get(ALIASES.get(name, name))


def tracker_choices() -> list[str]:
    """``--tracker`` values: ``model`` and every non-learned tracker (aliases included)."""
    return ["model", *NON_LEARNED, *ALIASES]


__all__ = ["ALIASES", "NON_LEARNED", "NonLearnedTracker", "non_learned", "tracker_choices"]
