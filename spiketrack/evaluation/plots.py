"""Success, precision and normalised-precision plots (PNG) from an :class:`EvaluationResult`, overall and per
attribute (success only: ``success_<CODE>.png``, as the EventVOT toolkit draws one per challenge).

Legends show the same numbers as the printed tables (one decimal) and trackers are listed best first,
as the MATLAB toolkit draws them. Uses matplotlib's Agg canvas directly, so no global backend is set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spiketrack.atomic import atomic_path
from spiketrack.evaluation.evaluate import EvaluationResult, TrackerResult
from spiketrack.evaluation.protocols import Aggregate

_KINDS = {
    # kind: (curve attribute, score key, x label, title)
    "success": ("success", "SR", "Overlap threshold", "Success plot"),
    "precision": ("precision", "PR", "Location error threshold (pixels)", "Precision plot"),
    "norm_precision": ("norm_precision", "NPR", "Normalised location error threshold", "Normalised precision plot"),
}


def _scores(tracker: TrackerResult, attribute: str | None) -> Aggregate:
    return tracker.overall if attribute is None else tracker.attributes[attribute]


def legend_entries(result: EvaluationResult, kind: str, attribute: str | None = None) -> list[tuple[str, str]]:
    """``(tracker, label)`` pairs, best score first; labels carry the table's one-decimal score (of the sequences
    with ``attribute`` when given)."""
    key = _KINDS[kind][1]
    order = sorted(result.trackers.values(), key=lambda tr: -getattr(_scores(tr, attribute), key))
    return [(tr.name, f"{tr.name} [{getattr(_scores(tr, attribute), key):.1f}]") for tr in order]


def plot_curve(result: EvaluationResult, kind: str, path: str | Path, attribute: str | None = None) -> Path:
    """Draw one kind ('success', 'precision', 'norm_precision') for every tracker into ``path`` (PNG), over every
    sequence or over the sequences carrying ``attribute``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    attr, _, xlabel, title = _KINDS[kind]
    p = result.protocol
    thresholds = {
        "success": p.success_thresholds,
        "precision": p.precision_thresholds,
        "norm_precision": p.norm_precision_thresholds,
    }[kind]
    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, label in legend_entries(result, kind, attribute):
        curve = np.asarray(getattr(_scores(result.trackers[name], attribute), attr)) * 100.0
        ax.plot(thresholds, curve, linewidth=2, label=label)
    if kind != "success":
        marker = p.pr_threshold if kind == "precision" else p.npr_threshold
        ax.axvline(marker, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlim(float(thresholds[0]), float(thresholds[-1]))
    ax.set_ylim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Success rate (%)" if kind == "success" else "Precision (%)")
    if attribute is None:
        ax.set_title(f"{title} ({p.name} protocol)")
    else:
        n = sum(attribute in gt.attributes for gt in result.ground_truth)
        ax.set_title(f"{title} - {attribute} ({n} sequences, {p.name} protocol)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right" if kind != "success" else "lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # never a 0-byte or half-written PNG under the final name
        fig.savefig(tmp, format="png")
    return path


def plot_all(result: EvaluationResult, out_dir: str | Path) -> list[Path]:
    """``success.png``, ``precision.png``, ``norm_precision.png`` and one ``success_<CODE>.png`` per attribute code
    of the evaluated sequences in ``out_dir``."""
    out_dir = Path(out_dir)
    paths = [plot_curve(result, kind, out_dir / f"{kind}.png") for kind in _KINDS]
    return paths + [plot_curve(result, "success", out_dir / f"success_{code}.png", attribute=code)
                    for code in result.attribute_codes]
