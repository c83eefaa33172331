"""Energy-accuracy reports: ``report.json``, ``report.md`` and ``accuracy_energy.png`` (the library behind
``spiketrack report``).

Each run is a results folder (accuracy via :func:`spiketrack.evaluation.evaluate.evaluate_trackers`) plus its
energy: an ``ENERGY_JSON`` from ``spiketrack energy`` or, when omitted, the ``<sequence>_energy.json`` files that
``spiketrack track --energy`` wrote into the results folder. Published figures appear only as labelled
reference points (:data:`PUBLISHED_ANCHORS`), never as measured rows.

A run may come with template-dependence probe results (``probes``: tracker name -> folder or ``probe.json`` of
:mod:`spiketrack.evaluation.probe`); the table then shows the SR drops with a zeroed and a foreign template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spiketrack.atomic import atomic_path, atomic_write_text, clean_stale_temps
from spiketrack.energy.dataset import energy_from_results, read_energy
from spiketrack.errors import ConfigError
from spiketrack.outputs import prepare_output_dir

# Published per-frame energies (45 nm, the papers' own counting). Reference points only.
PUBLISHED_ANCHORS: list[dict[str, Any]] = [
    {"tracker": "SDTrack-Tiny", "energy_mj_per_frame": 8.16,
     "source": "Shan et al., SDTrack: a baseline for event-based tracking via spiking neural networks, "
               "arXiv:2503.08703 (2025), energy column"},
    {"tracker": "OSTrack-256", "energy_mj_per_frame": 98.9,
     "source": "as listed in the SDTrack paper (arXiv:2503.08703) for OSTrack (Ye et al., ECCV 2022), 45 nm"},
]


@dataclass
class RunSpec:
    """``NAME=RESULTS_DIR[:ENERGY_JSON]`` of the command line."""

    name: str
    results_dir: Path
    energy_json: Path | None = None

    @classmethod
    def parse(cls, text: str) -> RunSpec:
        if "=" not in text:
            raise ConfigError(f"--run '{text}': expected NAME=RESULTS_DIR[:ENERGY_JSON]")
        name, rest = text.split("=", 1)
        energy = None
        if ":" in rest:
            head, tail = rest.rsplit(":", 1)
            if tail.endswith(".json"):
                rest, energy = head, Path(tail)
        if not name or not rest:
            raise ConfigError(f"--run '{text}': expected NAME=RESULTS_DIR[:ENERGY_JSON]")
        return cls(name, Path(rest), energy)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1e6:
        return f"{x / 1e9:.{digits}f} G"
    return f"{x:.{digits}f}"


def build_report(
    dataset: str | Path,
    runs: list[RunSpec],
    split: str | None = "test",
    protocol: str = "eventvot",
    allow_missing: bool = False,
    probes: dict[str, str | Path] | None = None,
    baselines: dict[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Accuracy + energy of every run; JSON-ready dict (the numbers of report.md and the plot).

    ``probes``: run name -> probe folder (or its ``probe.json``); each such row gets ``template_drop``
    ({mode: SR real - SR mode}) and ``probe`` (where it came from). ``baselines``: name -> results folder of a
    non-learned tracker (no model, so no energy): scored with the runs, listed under ``baselines`` (its evaluation
    numbers and ``results``), a table row without energy and a horizontal line in the plot.
    """
    from spiketrack.evaluation.evaluate import evaluate_trackers
    from spiketrack.evaluation.probe import read_probe

    if not runs:
        raise ConfigError("report: give at least one --run NAME=RESULTS_DIR[:ENERGY_JSON]")
    probes = dict(probes or {})
    unknown = sorted(set(probes) - {r.name for r in runs})
    if unknown:
        raise ConfigError(f"report: --probe names {unknown} match no --run (runs: {[r.name for r in runs]})")
    baselines = {name: Path(folder) for name, folder in (baselines or {}).items()}
    ev = evaluate_trackers(dataset, [r.results_dir for r in runs] + list(baselines.values()),
                           names=[r.name for r in runs] + list(baselines),
                           protocol=protocol, split=split, allow_missing=allow_missing)
    rows = []
    sources: dict[str, Any] = {}
    for spec in runs:
        acc = ev.trackers[spec.name].overall
        energy = read_energy(spec.energy_json) if spec.energy_json else energy_from_results(spec.results_dir)
        ov = energy["overall"]
        if energy.get("profile"):
            sources[energy["profile"]] = energy.get("profile_source")
        layers = energy.get("search_layers_per_frame", [])
        spiking = any(lay["input_kind"] == "spike" for lay in layers)
        rows.append({
            "tracker": spec.name,
            "results_dir": str(spec.results_dir),
            "energy_source": str(spec.energy_json) if spec.energy_json else f"{spec.results_dir}/*_energy.json",
            "SR": round(float(acc.SR), 1), "PR": round(float(acc.PR), 1), "NPR": round(float(acc.NPR), 1),
            "parameters": energy.get("model", {}).get("parameters"),
            "timesteps": energy.get("model", {}).get("timesteps"),
            "profile": energy.get("profile"),
            "frames": ov["frames"],
            "mac_per_frame": ov["mac_per_frame"],
            "sop_per_frame": ov["sop_per_frame"],
            "sop_paper_per_frame": ov.get("sop_paper_per_frame"),
            "energy_mj_per_frame": ov["energy_mj_per_frame"],
            "energy_mj_paper_per_frame": ov.get("energy_mj_paper_per_frame"),
            "energy_mj_per_sequence": ov["energy_mj_per_sequence"],
            "energy_mj_with_memory_per_frame": ov.get("energy_mj_with_memory_per_frame"),
            "energy_mj_tuning_per_sequence": ov.get("energy_mj_tuning_per_sequence"),
            "energy_mj_per_frame_without_tuning": ov.get("energy_mj_per_frame_without_tuning"),
            "firing_rate": ov.get("firing_rate"),
            "spiking": spiking,
            "search_layers_per_frame": layers if spiking else [],
        })
        if spec.name in probes:
            probe = read_probe(probes[spec.name])
            rows[-1]["template_drop"] = {m: round(float(v), 1) for m, v in probe["drop"].items()}
            rows[-1]["probe"] = str(probes[spec.name])
    profiles = sorted({r["profile"] for r in rows if r["profile"]})
    scored = ev.to_dict()["trackers"] if baselines else {}
    extra = {"baselines": {name: scored[name] | {"results": str(folder)} for name, folder in baselines.items()}}
    return {
        "dataset": str(dataset),
        "split": split,
        "protocol": protocol,
        "profiles": [{"name": p, "source": sources.get(p)} for p in profiles],
        "runs": rows,
        "published_reference": PUBLISHED_ANCHORS,
        "notes": ev.notes + [
            "mJ/frame = all model calls of all sequences (template init, template updates, search) / all frames; "
            "mJ/sequence = mean over sequences of E_seq = E_template_init + sum E_updates + sum E_search.",
            "SOP = exact synaptic operations (fan-out of every unit spike); MAC = dense-input multiply-accumulates; "
            "BN folded, residual adds and neuron updates not included unless the energy JSON says so.",
            "mJ/frame with memory = compute + weight/membrane-potential memory accesses and addressing (Lemaire et "
            "al., ICONIP 2022; `spiketrack energy --memory`); '-' where the energy JSON was measured without it.",
        ],
    } | (extra if baselines else {})


def render_markdown(report: dict[str, Any]) -> str:
    """report.md text: the comparison table, reference points, per-layer tables of spiking models."""
    lines = ["# Energy-accuracy report", "",
             f"Dataset `{report['dataset']}` (split {report['split']}, protocol {report['protocol']}).", ""]
    made = report.get("generated_by")
    if made:
        lines += [f"Generated by `{made['command']}` on {made['date']} ({made['seconds_total']:.0f} s in all).", ""]
    for p in report["profiles"]:
        lines.append(f"Energy profile **{p['name']}** — {p['source']}.")
    drops = sorted({m for r in [*report["runs"], *report.get("baselines", {}).values()]
                    for m in r.get("template_drop", {})},
                   key=lambda m: ("zeroed", "foreign").index(m) if m in ("zeroed", "foreign") else 2)
    drop_head = "".join(f" SR drop {m} |" for m in drops)
    tuned = any(r.get("energy_mj_tuning_per_sequence") is not None for r in report["runs"])
    tuning_head = " mJ/frame without tuning | tuning mJ/sequence |" if tuned else ""
    lines += ["", "| tracker | SR | PR | NPR |" + drop_head + " params (M) | MAC/frame (G) | SOP/frame (G) | mJ/frame "
              "| mJ/sequence |" + tuning_head + " mJ/frame with memory | firing rate |",
              "|---|---|---|---|" + "---|" * len(drops) + "---|---|---|---|---|" + "---|" * (2 * tuned) + "---|---|"]
    for r in report["runs"]:
        params = "-" if r["parameters"] is None else f"{r['parameters'] / 1e6:.2f}"
        fr = "-" if r["firing_rate"] is None else f"{r['firing_rate']:.4f}"
        probe = r.get("template_drop", {})
        drop_cells = "".join(f" {probe[m]:+.1f} |" if m in probe else " - |" for m in drops)
        mem = r.get("energy_mj_with_memory_per_frame")
        mem = "-" if mem is None else f"{mem:.4f}"
        tuning_cells = ""
        if tuned:
            tuning_cells = "".join(" - |" if r.get(k) is None else f" {r[k]:.4f} |"
                                   for k in ("energy_mj_per_frame_without_tuning", "energy_mj_tuning_per_sequence"))
        lines.append(
            f"| {r['tracker']} | {r['SR']:.1f} | {r['PR']:.1f} | {r['NPR']:.1f} |{drop_cells} {params} | "
            f"{r['mac_per_frame'] / 1e9:.4f} | {r['sop_per_frame'] / 1e9:.4f} | {r['energy_mj_per_frame']:.4f} | "
            f"{r['energy_mj_per_sequence']:.4f} |{tuning_cells} {mem} | {fr} |"
        )
    for name, b in report.get("baselines", {}).items():  # non-learned trackers: accuracy (and probe) only
        probe = b.get("template_drop", {})
        drop_cells = "".join(f" {probe[m]:+.1f} |" if m in probe else " - |" for m in drops)
        lines.append(f"| {name} (no model, not counted) | {b['SR']:.1f} | {b['PR']:.1f} | {b['NPR']:.1f} |"
                     + drop_cells + " - | - | - | - | - |" + " - |" * (2 * tuned) + " - | - |")
    if tuned:
        lines += ["", "Test-time tuning (`tracking.ttt`) is a one-off cost per sequence (its SGD steps, forward and "
                  "backward, and the template encoded again), charged once: mJ/frame and mJ/sequence include it, "
                  "'mJ/frame without tuning' is the tracking cost alone and 'tuning mJ/sequence' the tuning alone."]
    if drops:
        lines += ["", "SR drop = SR with the real template - SR with a zeroed / foreign template (percentage points, "
                  "`spiketrack probe template`); near 0: the tracker ignores its template."]
    lines += ["", "Published reference points (not measured here; their own counting and profile):", ""]
    for a in report["published_reference"]:
        lines.append(f"- {a['tracker']}: {a['energy_mj_per_frame']} mJ/frame — {a['source']}")
    for r in report["runs"]:
        if not r["search_layers_per_frame"]:
            continue
        lines += ["", f"## Per-layer operations of {r['tracker']} (search branch, per frame)", "",
                  "| layer | type | input | MAC | SOP (exact) | SOP (fr x T x FLOPs) | firing rate |",
                  "|---|---|---|---|---|---|---|"]
        for lay in r["search_layers_per_frame"]:
            fr = "-" if lay["firing_rate"] is None else f"{lay['firing_rate']:.4f}"
            lines.append(f"| {lay['name']} | {lay['type']} | {lay['input_kind']} | {lay['mac']:.0f} | "
                         f"{lay['sop']:.0f} | {lay['sop_paper']:.0f} | {fr} |")
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def accuracy_energy_figure(report: dict[str, Any]):  # noqa: ANN201 - matplotlib Figure
    """SR against mJ/frame (log x) of every run.

    Each model is a filled marker at its compute-only energy and, where the energy JSON has it, a hollow marker of
    the same colour at its memory-aware energy (compute + memory accesses, Lemaire et al. 2022), joined by a dotted
    line. Non-learned trackers (``report['baselines']``: no model, so no energy) are horizontal lines at their SR;
    published figures are labelled vertical reference lines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    legend = []
    for i, r in enumerate(report["runs"]):
        colour = f"C{i % 10}"  # matplotlib's default colour cycle
        marker = "o" if r["spiking"] else "s"
        x = max(r["energy_mj_per_frame"], 1e-9)
        ax.scatter([x], [r["SR"]], s=50, marker=marker, color=colour, zorder=3)
        ax.annotate(r["tracker"], (x, r["SR"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        mem = r.get("energy_mj_with_memory_per_frame")
        if mem is not None:
            xm = max(mem, 1e-9)
            ax.plot([x, xm], [r["SR"], r["SR"]], linestyle=":", color=colour, linewidth=1, zorder=2)
            ax.scatter([xm], [r["SR"]], s=50, marker=marker, facecolors="none", edgecolors=colour, zorder=3)
    for name, b in report.get("baselines", {}).items():
        ax.axhline(b["SR"], color="0.35", linestyle="-.", linewidth=1)
        ax.annotate(f"{name} (no model) {b['SR']:.1f}", (0.01, b["SR"]), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(0, 3), fontsize=7, color="0.35")
    for a in report["published_reference"]:
        ax.axvline(a["energy_mj_per_frame"], color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(f"{a['tracker']} (published)", (a["energy_mj_per_frame"], 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, fontsize=7, color="grey", xytext=(3, 0), textcoords="offset points")
    legend.append(Line2D([], [], marker="o", color="0.3", linestyle="",
                         label="compute only (filled; circle: spiking, square: ANN)"))
    if any(r.get("energy_mj_with_memory_per_frame") is not None for r in report["runs"]):
        legend.append(Line2D([], [], marker="o", color="0.3", markerfacecolor="none", linestyle=":",
                             label="with memory accesses (hollow)"))
    if report.get("baselines"):
        legend.append(Line2D([], [], color="0.35", linestyle="-.", label="non-learned baseline (SR only)"))
    legend.append(Line2D([], [], color="grey", linestyle="--", label="published (not measured here)"))
    ax.legend(handles=legend, fontsize=7, loc="best")
    ax.set_xscale("log")
    ax.set_xlabel("energy per frame (mJ, log scale)")
    ax.set_ylabel("SR (%)")
    ax.set_title("Accuracy vs energy per frame")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_accuracy_energy(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`accuracy_energy_figure` as a PNG."""
    fig = accuracy_energy_figure(report)
    p = Path(path)
    with atomic_path(p) as tmp:  # never a 0-byte or half-written PNG under the final name
        fig.savefig(tmp, format="png")
    return p


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and accuracy_energy.png into ``out_dir``."""
    out = prepare_output_dir(out_dir, "report folder")
    clean_stale_temps(out)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "accuracy_energy.png"}
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], render_markdown(report))
    plot_accuracy_energy(report, paths["png"])
    return paths
