"""spiketrack.evaluation: SR/PR/NPR under the EventVOT (MATLAB toolkit) or pytracking protocol,
per-sequence and per-attribute tables, curves and plots."""

from spiketrack.evaluation.evaluate import EvaluationResult, TrackerResult, evaluate_trackers
from spiketrack.evaluation.groundtruth import GroundTruth, load_ground_truth, read_eventvot_sequence
from spiketrack.evaluation.protocols import (
    EVENTVOT,
    PYTRACKING,
    Aggregate,
    Protocol,
    SequenceCurves,
    aggregate,
    eventvot_curves,
    get_protocol,
    pytracking_curves,
    sequence_curves,
)

__all__ = [
    "EVENTVOT",
    "PYTRACKING",
    "Aggregate",
    "EvaluationResult",
    "GroundTruth",
    "Protocol",
    "SequenceCurves",
    "TrackerResult",
    "aggregate",
    "evaluate_trackers",
    "eventvot_curves",
    "get_protocol",
    "load_ground_truth",
    "pytracking_curves",
    "read_eventvot_sequence",
    "sequence_curves",
]
