"""The energy-accuracy plot: compute-only and memory-aware energy side by side, non-learned baselines as lines."""

from __future__ import annotations

import numpy as np

from spiketrack.energy.report import PUBLISHED_ANCHORS, accuracy_energy_figure


def _run(name: str, sr: float, mj: float, mem: float | None, spiking: bool) -> dict:
    return {"tracker": name, "SR": sr, "energy_mj_per_frame": mj, "energy_mj_with_memory_per_frame": mem,
            "spiking": spiking}


def _points(ax) -> list[tuple[float, float, bool]]:  # noqa: ANN001
    """(x, y, filled) of every scatter marker."""
    out = []
    for coll in ax.collections:
        filled = len(coll.get_facecolors()) > 0 and coll.get_facecolors()[0][3] > 0
        out += [(float(x), float(y), bool(filled)) for x, y in np.asarray(coll.get_offsets())]
    return out


def test_memory_energy_beside_compute_and_baselines_as_lines() -> None:
    report = {
        "runs": [_run("teacher", 25.6, 0.7872, 7.3298, False), _run("student", 17.1, 0.0168, 0.9592, True),
                 _run("old", 10.0, 0.5, None, False)],
        "baselines": {"baseline": {"SR": 19.2, "PR": 33.0, "NPR": 23.6}},
        "published_reference": PUBLISHED_ANCHORS,
    }
    fig = accuracy_energy_figure(report)
    (ax,) = fig.axes
    points = _points(ax)
    # filled markers at the compute-only energy, hollow ones at the memory-aware energy, same SR
    assert (0.7872, 25.6, True) in points and (7.3298, 25.6, False) in points
    assert (0.0168, 17.1, True) in points and (0.9592, 17.1, False) in points
    assert (0.5, 10.0, True) in points and len(points) == 5  # no memory figure: no hollow marker
    # the baseline is a horizontal line across the axes at its SR
    horizontal = [ln for ln in ax.lines if list(ln.get_ydata()) == [19.2, 19.2] and list(ln.get_xdata()) == [0, 1]]
    assert len(horizontal) == 1
    # the published anchors stay vertical lines
    verticals = {ln.get_xdata()[0] for ln in ax.lines if list(ln.get_ydata()) == [0, 1]}
    assert verticals == {a["energy_mj_per_frame"] for a in PUBLISHED_ANCHORS}
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "with memory accesses (hollow)" in labels and "non-learned baseline (SR only)" in labels


def test_plot_without_memory_or_baselines_has_no_such_legend() -> None:
    report = {"runs": [_run("student", 17.1, 0.0168, None, True)], "published_reference": []}
    ax = accuracy_energy_figure(report).axes[0]
    assert _points(ax) == [(0.0168, 17.1, True)]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "with memory accesses (hollow)" not in labels and "non-learned baseline (SR only)" not in labels
