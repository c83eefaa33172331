"""The deployable student at quickstart scale (issue 18): its SR in float and at 8 and 4 weight bits, beside the
default student's, and its deploy report (per-layer fit on each hardware profile, compute-only and memory-aware
energy).

Steps, each skipped when its output is there (re-running continues where it stopped):

1. distil ``configs/quickstart_student_deployable.yaml`` from the quickstart teacher on the quickstart benchmark
   (``spiketrack distill ... --resume``) into ``<work>/student_deployable``;
2. track the quickstart test split with the float model and with BN-folded, symmetric per-channel fake-quantised
   copies at each ``--bits`` (``spiketrack.deploy.quantize``) into ``<work>/deploy/results-<bits>``, and score them
   with the EventVOT protocol (SR, PR, and SR on the multi-object sequences). The float model is tracked from its
   checkpoint, so ``results-32/track_run.json`` records the checkpoint path and SHA-256 and
   ``spiketrack probe template --checkpoint <best.pt> --real-results <work>/deploy/results-32`` accepts the folder
   (the quantised copies exist only in this process); a ``results-32`` made by an earlier version of this script
   records an in-process model and is refused: delete it to track again;
3. ``spiketrack deploy-report`` of the model at the first ``--bits`` on ``--report-limit`` test sequences;
4. ``<out>/deployable.md`` and ``deployable.json``: the SR table, the default student's SR from the quickstart
   report (``--report``), and the hardware-fit summary.

Usage (after ``make demo`` has filled ``work/quickstart``)::

    .venv/bin/python tools/deploy_quickstart.py            # about 30 min on a 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spiketrack.atomic import atomic_write_text
from spiketrack.cli import main as cli
from spiketrack.config import load_config
from spiketrack.data.dataset import SequenceDataset
from spiketrack.deploy.quantize import quantize_weights
from spiketrack.errors import SpiketrackError
from spiketrack.evaluation.evaluate import evaluate_trackers
from spiketrack.models.checkpoint import load_model
from spiketrack.quickstart import dataset_override
from spiketrack.tracking.runner import track_dataset

FLOAT = 32  # 'bits' label of the unquantised model


def distil(work: Path, config: Path, sets: list[str]) -> Path:
    """Distil the deployable student with the ``--set`` overrides ``sets`` (resumable); returns its best
    checkpoint."""
    run = work / "student_deployable"
    best = run / "checkpoints" / "best.pt"
    done = run / "distill.done"
    if done.is_file() and best.is_file():
        return best
    teacher = work / "teacher" / "checkpoints" / "best.pt"
    if not teacher.is_file():
        raise SystemExit(f"{teacher}: no quickstart teacher (run make demo first)")
    cmd = [sys.executable, "-m", "spiketrack.cli", "distill", str(config), "--teacher", str(teacher),
           *[a for text in sets for a in ("--set", text)],
           "--out", str(run), "--resume", "--no-progress"]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    done.write_text(f"{time.time() - start:.0f} s\n")
    return best


def score(work: Path, results: Path, split: str) -> dict[str, float]:
    """SR / PR / NPR of one results folder, and SR on the multi-object (MO) sequences when the split has any."""
    ev = evaluate_trackers(work / "synth", [results], names=["model"], split=split)
    tr = ev.trackers["model"]
    out = {k: float(v) for k, v in tr.overall.scores().items()}
    if "MO" in tr.attributes:
        out["SR_MO"] = float(tr.attributes["MO"].SR)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("work/quickstart"), help="the quickstart's work folder")
    parser.add_argument("--config", type=Path, default=Path("configs/quickstart_student_deployable.yaml"))
    parser.add_argument("--report", type=Path, default=Path("energy_reports/quickstart"),
                        help="the quickstart report (its student row is the comparison)")
    parser.add_argument("--out", type=Path, default=Path("energy_reports/quickstart/deploy"))
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4], help="weight precisions to track")
    parser.add_argument("--report-limit", type=int, default=10, help="test sequences counted by the deploy report")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="config override of the deployable student (distillation and tracking)")
    args = parser.parse_args()

    work = args.work
    sets = [dataset_override(work / "synth"), *args.extra]
    cfg = load_config(str(args.config), sets)
    split = cfg.data.test_split
    ckpt = distil(work, args.config, sets)
    names = SequenceDataset(work / "synth").names(split)
    rows: list[dict[str, Any]] = []
    for bits in [FLOAT, *args.bits]:
        results = work / "deploy" / f"results-{bits}"
        # float: the checkpoint itself (the runner loads it with the same load_model call), so the results folder
        # names it; the quantised copies have no file and are tracked in-process
        tracker = ckpt if bits == FLOAT else quantize_weights(load_model(cfg, ckpt), bits)
        track_dataset(cfg, tracker, work / "synth", split, results, workers=args.workers, progress=False)
        rows.append({"weight_bits": bits, **score(work, results, split)})
        print(f"deployable student, {'float' if bits == FLOAT else f'{bits}-bit'} weights: SR {rows[-1]['SR']:.1f}",
              flush=True)

    deploy_dir = args.out / f"deploy_report_{args.bits[0]}bit"
    rc = cli(["deploy-report", "--config", str(args.config), *[a for t in sets for a in ("--set", t)],
              "--checkpoint", str(ckpt),
              "--dataset", str(work / "synth"), "--split", split, "--limit", str(args.report_limit),
              "--weight-bits", str(args.bits[0]), "--quantize", "--out", str(deploy_dir)])
    if rc:
        raise SystemExit(rc)
    deploy = json.loads((deploy_dir / "deploy_report.json").read_text())

    student = None
    report_json = args.report / "report.json"
    if report_json.is_file():
        student = next((r for r in json.loads(report_json.read_text())["runs"] if r["tracker"] == "student"), None)
    summary = {"checkpoint": str(ckpt), "split": split, "sequences": len(names), "rows": rows,
               "default_student_SR": None if student is None else student["SR"],
               "hardware": deploy["hardware"], "deploy_report": str(deploy_dir / "deploy_report.md")}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "deployable.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(args.out / "deployable.md", render(summary, args))
    print(f"wrote {args.out / 'deployable.md'}")


def render(summary: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# Deployable student at quickstart scale",
        "",
        f"Generated by `.venv/bin/python tools/deploy_quickstart.py` on {time.strftime('%Y-%m-%d')}: "
        f"`{args.config}` distilled from the quickstart teacher, tracked on the {summary['sequences']} sequences "
        f"of the quickstart test split (`{args.work}/synth`, split {summary['split']}).",
        "",
        "| model | weights | SR | PR | NPR | SR multi-object |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        bits = "float32" if r["weight_bits"] == FLOAT else f"{r['weight_bits']}-bit (per-channel, BN folded)"
        mo = f"{r['SR_MO']:.1f}" if "SR_MO" in r else "-"
        lines.append(f"| deployable student | {bits} | {r['SR']:.1f} | {r['PR']:.1f} | {r['NPR']:.1f} | {mo} |")
    if summary["default_student_SR"] is not None:
        lines.append(f"| default student (quickstart report) | float32 | {summary['default_student_SR']:.1f} | | | |")
    lines += ["", "Hardware fit of the deployable student "
              f"({args.bits[0]}-bit weights; per-layer table in `{Path(summary['deploy_report']).name}`):", ""]
    for name, h in summary["hardware"].items():
        lines.append(f"- {name}: {'fits' if h['fits'] else 'does not fit'}, {h['cores']} cores, {h['chips']} chip(s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    try:
        main()
    except SpiketrackError as exc:  # a refused input (e.g. a results folder of another run): one line, exit 2
        print(f"deploy_quickstart: error: {exc}", file=sys.stderr)
        sys.exit(2)
