"""Wall time of the demo from a fresh clone: setup, the quickstart on an idle machine, and beside one busy process.

A user's machine is rarely idle. The demo must not fight its own cores (torch's OpenMP threads beside the loader
workers, see ``spiketrack/threads.py``), nor collapse when another program takes one core. This tool measures:

1. ``make setup`` in a fresh clone of ``--repo`` (the virtual environment; the part of ``make demo`` before the
   quickstart);
2. the quickstart as ``make demo`` runs it, in a fresh work folder, with nothing else running;
3. the same in another fresh work folder while one busy process (a Python loop) holds one core.

It prints one table (seconds, and the busy / idle ratio) and writes it as JSON (``--out``). Targets: setup +
idle quickstart <= 15 min; busy <= 1.5 x idle. Run it on an otherwise idle machine (about 35-45 minutes)::

    python tools/demo_time.py --repo . --scratch /tmp/demo-time --out demo_time.json
    python tools/demo_time.py --skip-busy ...   # setup and the idle run; --skip-idle: setup and the busy run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _timed(cmd: list[str], cwd: Path, log: Path) -> float:
    """Run ``cmd`` in ``cwd`` (output to ``log``); seconds of wall time; exits on failure."""
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}; see {log}")
    return seconds


def _stages(report: Path) -> dict[str, float]:
    """Seconds of each quickstart stage, from the work folder's stage markers."""
    out = {}
    for marker in sorted(report.glob("*.done")):
        try:
            out[marker.stem] = float(json.loads(marker.read_text())["seconds"])
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository to clone (default: .)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/spiketrack-demo-time"), help="scratch folder")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    parser.add_argument("--skip-busy", action="store_true", help="measure setup and the idle run only")
    parser.add_argument("--skip-idle", action="store_true",
                        help="measure setup and the busy run only (compare with an idle run of the same commit)")
    args = parser.parse_args()
    if args.skip_busy and args.skip_idle:
        parser.error("--skip-busy and --skip-idle leave nothing to measure")
    shutil.rmtree(args.scratch, ignore_errors=True)
    args.scratch.mkdir(parents=True)
    clone = args.scratch / "clone"
    subprocess.run(["git", "clone", "--quiet", str(args.repo.resolve()), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                            text=True).stdout.strip()
    env_note = {k: os.environ[k] for k in ("OMP_NUM_THREADS",) if k in os.environ}
    result: dict[str, object] = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
                                 "environment": env_note}
    result["setup_s"] = _timed(["make", "setup"], clone, args.scratch / "setup.log")
    quickstart = [str(clone / ".venv" / "bin" / "spiketrack"), "quickstart", "--no-progress"]
    runs = ([] if args.skip_idle else [("idle", None)]) + \
        ([] if args.skip_busy else [("busy", [sys.executable, "-c", "while True: pass"])])
    for label, competitor in runs:
        work = args.scratch / f"work-{label}"
        busy = subprocess.Popen(competitor) if competitor else None
        try:
            seconds = _timed([*quickstart, "--work", str(work), "--set",
                              f"quickstart.report_out={args.scratch / f'report-{label}'}"], clone,
                             args.scratch / f"quickstart-{label}.log")
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        result[f"quickstart_{label}_s"] = seconds
        result[f"stages_{label}_s"] = _stages(work)
    print("| measure | seconds | minutes |")
    print("|---|---:|---:|")
    print(f"| setup (make setup, fresh clone) | {result['setup_s']:.0f} | {float(result['setup_s']) / 60:.1f} |")
    idle = float(result["quickstart_idle_s"]) if "quickstart_idle_s" in result else None  # type: ignore[arg-type]
    if idle is not None:
        print(f"| quickstart, idle | {idle:.0f} | {idle / 60:.1f} |")
        print(f"| setup + quickstart, idle (make demo) | {float(result['setup_s']) + idle:.0f} | "
              f"{(float(result['setup_s']) + idle) / 60:.1f} |")
    if "quickstart_busy_s" in result:
        busy_s = float(result["quickstart_busy_s"])  # type: ignore[arg-type]
        print(f"| quickstart, one busy competitor | {busy_s:.0f} | {busy_s / 60:.1f} |")
        if idle is not None:
            result["busy_over_idle"] = busy_s / idle
            print(f"| busy / idle | {busy_s / idle:.2f} | |")
    for label, _ in runs:
        stages = result[f"stages_{label}_s"]
        print(f"stages ({label}): " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))  # type: ignore[union-attr]
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
