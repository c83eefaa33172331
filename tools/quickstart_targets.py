"""Check a quickstart report against the quickstart targets and print each with its measured number.

The targets (measured here, from the files a real run wrote, never asserted in tests):

- teacher SR >= SR of the NCC template matcher on events + 10, student SR >= NCC + 5, on the whole test split and on
  its multi-object (``MO``) sequences: a learned tracker must beat a fixed matcher that only follows appearance;
- SR drop with a foreign template (another scene's) on the distinct-appearance multi-object sequences (``DA``, where
  appearance decides): teacher >= 15, student >= 8 (the zeroed drop and the whole-split drops are reported);
- student energy per frame <= teacher / 10, counting arithmetic only; the ratio with memory traffic is reported;
- the run's own stage times (the wall time of ``make demo``, setup included, is measured with ``time``).

SR per attribute comes from the probe folders (``<work>/probe/<tracker>/probe.json``, real-template results).

Usage: ``.venv/bin/python tools/quickstart_targets.py [--report energy_reports/quickstart] [--work work/quickstart]``.
Exit code 0 whatever the outcome: this is a measurement, not a gate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TEACHER_OVER_NCC_MIN = 10.0
STUDENT_OVER_NCC_MIN = 5.0
FOREIGN_DROP_MIN = {"teacher": 15.0, "student": 8.0}  # on the DA sequences
ENERGY_RATIO_MAX = 0.1
MINUTES_MAX = 15.0

Row = tuple[str, float | None, str, bool | None]


def _probe(work: Path, tracker: str) -> dict[str, Any]:
    path = work / "probe" / tracker / "probe.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _sr(report: dict[str, Any], probes: dict[str, dict[str, Any]], tracker: str, code: str | None) -> float | None:
    """SR of ``tracker`` on the whole split (``code`` None, from the report) or on one attribute (from its probe)."""
    if code is None:
        row = {r["tracker"]: r for r in report["runs"]}.get(tracker) or report.get("baselines", {}).get(tracker)
        return None if row is None else float(row["SR"])
    attr = probes.get(tracker, {}).get("attributes", {}).get(code)
    return None if attr is None else float(attr["SR"]["real"])


def measure(report_dir: Path, work: Path) -> list[Row]:
    """Rows (target, measured value, threshold text, met) from ``report.json`` and the probe folders."""
    report = json.loads((report_dir / "report.json").read_text())
    runs = {r["tracker"]: r for r in report["runs"]}
    probes = {name: _probe(work, name) for name in ("teacher", "student", "ncc")}
    rows: list[Row] = []
    for code, label in ((None, "whole split"), ("MO", "MO sequences")):
        ncc = _sr(report, probes, "ncc", code)
        rows.append((f"NCC (events) SR, {label}", ncc, "(reference)", None))
        for name, margin in (("teacher", TEACHER_OVER_NCC_MIN), ("student", STUDENT_OVER_NCC_MIN)):
            sr = _sr(report, probes, name, code)
            gap = None if sr is None or ncc is None else sr - ncc
            rows.append((f"{name} SR - NCC SR, {label}", gap, f">= {margin:g} (SR {sr if sr is None else round(sr, 1)})",
                         None if gap is None else gap >= margin))
    for name in ("teacher", "student", "ncc"):
        probe = probes[name]
        attrs = probe.get("attributes", {})
        da = attrs.get("DA", {}).get("drop", {}).get("foreign")
        wanted = FOREIGN_DROP_MIN.get(name)
        rows.append((f"{name} SR drop, foreign template, DA sequences", da,
                     "(reference)" if wanted is None else f">= {wanted:g}",
                     None if da is None or wanted is None else da >= wanted))
        for label, drops in (("LA sequences", attrs.get("LA", {}).get("drop", {})),
                             ("whole split", probe.get("drop", {}))):
            for mode in ("zeroed", "foreign"):
                if mode in drops:
                    rows.append((f"{name} SR drop, {mode} template, {label}", drops[mode], "(reported)", None))
    teacher, student = runs.get("teacher"), runs.get("student")
    if teacher and student and teacher["energy_mj_per_frame"] > 0:
        ratio = student["energy_mj_per_frame"] / teacher["energy_mj_per_frame"]
        rows.append(("student / teacher energy per frame (compute)", ratio, f"<= {ENERGY_RATIO_MAX:g}",
                     ratio <= ENERGY_RATIO_MAX))
        t_mem, s_mem = teacher.get("energy_mj_with_memory_per_frame"), student.get("energy_mj_with_memory_per_frame")
        if t_mem and s_mem:
            rows.append(("student / teacher energy per frame (with memory)", s_mem / t_mem, "(reported)", None))
    seconds = report.get("generated_by", {}).get("seconds_total")
    if seconds is not None:
        rows.append(("stage minutes (sum, setup not included)", seconds / 60, f"<= {MINUTES_MAX:g} with setup", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default="energy_reports/quickstart", help="report folder (report.json)")
    parser.add_argument("--work", default="work/quickstart", help="quickstart work folder (probe/<tracker>/)")
    args = parser.parse_args()
    print("| target | measured | wanted | met |")
    print("|---|---:|---|---|")
    for label, value, wanted, met in measure(Path(args.report), Path(args.work)):
        shown = "-" if value is None else f"{value:.3f}" if "energy per frame" in label else f"{value:.1f}"
        verdict = "-" if met is None else ("yes" if met else "**no**")
        print(f"| {label} | {shown} | {wanted} | {verdict} |")


if __name__ == "__main__":
    main()
