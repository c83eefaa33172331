"""Quickstart accuracy over several training seeds: mean and spread of the quickstart targets.

The quickstart is run once per extra training seed (``train.seed``) in a work folder of its own,
``<work>-seed<S>``, that shares the first run's synthetic benchmark (hard links, the same fixed data seed), so only
the models' initialisation and sample order change. Each seed's stages are the quickstart's own (teacher, student,
track, probe, report). Then every run's targets (:mod:`quickstart_targets`) are printed per seed and as mean, sample
standard deviation and range.

Usage (after ``make demo`` has filled ``work/quickstart``)::

    .venv/bin/python tools/quickstart_seeds.py --seeds 1 2            # runs seeds 1 and 2 (about 2 x 25 min)
    .venv/bin/python tools/quickstart_seeds.py --seeds 1 2 --no-run   # only collects finished runs
    .venv/bin/python tools/quickstart_seeds.py --seeds 1 2 --reuse-teachers  # student-only change: keep teachers

``--reuse-teachers`` keeps a seed folder's finished teacher stage (its checkpoint and ``teacher.done``) and redoes
the student and every later stage from scratch, so a change to the student alone does not train the teachers again.

The first run (``--work``, seed 0 as ``make demo`` trains it) is included with its report ``--report``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart_targets import measure  # noqa: E402

from spiketrack.quickstart import STAGES  # noqa: E402


def prepare(work: Path, seed_work: Path) -> None:
    """``seed_work`` with the data stage of ``work`` done: its benchmark hard-linked (copied where links fail)."""
    src = work / "synth"
    if not (work / "data.done").is_file() or not src.is_dir():
        raise SystemExit(f"{work}: no finished data stage (run make demo first)")
    dst = seed_work / "synth"
    if not dst.is_dir():
        tmp = seed_work / "synth.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in src.iterdir():
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
        tmp.rename(dst)
    marker = (work / "data.done").read_text().replace(str(work / "synth"), str(dst))
    (seed_work / "data.done").write_text(marker)


AFTER_TEACHER = STAGES[STAGES.index("teacher") + 1:]  # redone when a seed's teacher is reused


def forget_after_teacher(seed_work: Path) -> None:
    """Make the quickstart redo ``seed_work``'s student and later stages, keeping a finished teacher stage.

    The student's folder goes too: the student stage resumes from its checkpoints otherwise.
    """
    if not (seed_work / "teacher.done").is_file():
        print(f"{seed_work}: no finished teacher stage to reuse; the seed runs in full", flush=True)
        return
    for stage in AFTER_TEACHER:
        (seed_work / f"{stage}.done").unlink(missing_ok=True)
    shutil.rmtree(seed_work / "student", ignore_errors=True)


def run_seed(work: Path, seed: int, extra: list[str], reuse_teacher: bool = False) -> Path:
    """Run the quickstart with ``train.seed=seed`` in ``<work>-seed<seed>``; returns its report folder."""
    seed_work = work.with_name(f"{work.name}-seed{seed}")
    report = seed_work / "report"
    prepare(work, seed_work)
    if reuse_teacher:
        forget_after_teacher(seed_work)
    cmd = [sys.executable, "-m", "spiketrack.cli", "quickstart", "--work", str(seed_work), "--no-progress",
           "--set", f"train.seed={seed}", "--set", f"quickstart.report_out={report}"]
    for text in extra:
        cmd += ["--set", text]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("work/quickstart"), help="the first run's work folder")
    parser.add_argument("--report", type=Path, default=Path("energy_reports/quickstart"), help="the first run's report")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="extra training seeds")
    parser.add_argument("--no-run", action="store_true", help="collect finished runs only")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="quickstart override for the seeds")
    parser.add_argument("--reuse-teachers", action="store_true",
                        help="keep each seed folder's finished teacher; redo the student and later stages")
    args = parser.parse_args()
    runs = [(0, args.report, args.work)]
    for seed in args.seeds:
        seed_work = args.work.with_name(f"{args.work.name}-seed{seed}")
        report = seed_work / "report" if args.no_run else run_seed(args.work, seed, args.extra, args.reuse_teachers)
        runs.append((seed, report, seed_work))
    table: dict[str, list[float]] = {}
    rows = []
    for seed, report, work in runs:
        if not (report / "report.json").is_file():
            print(f"seed {seed}: no report in {report}; skipped")
            continue
        values = {label: value for label, value, _, _ in measure(report, work) if value is not None}
        rows.append((seed, values))
        for label, value in values.items():
            table.setdefault(label, []).append(value)
    labels = [label for label in table if "minutes" not in label]
    print(f"\n{len(rows)} training seeds ({', '.join(str(s) for s, _ in rows)}); spread = sample standard deviation\n")
    print("| measure | " + " | ".join(f"seed {s}" for s, _ in rows) + " | mean | spread | range |")
    print("|---|" + "---:|" * (len(rows) + 3))
    for label in labels:
        vals = table[label]
        fmt = "{:.3f}" if "energy per frame" in label else "{:.1f}"
        per_seed = " | ".join(fmt.format(v[1][label]) if label in v[1] else "-" for v in rows)
        spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"| {label} | {per_seed} | {fmt.format(statistics.mean(vals))} | {fmt.format(spread)} | "
              f"{fmt.format(min(vals))} .. {fmt.format(max(vals))} |")


if __name__ == "__main__":
    main()
