"""Peak RSS of ``spiketrack track`` with and without ``--energy`` on one long synthetic sequence (issue 16).

Usage: ``python tools/energy_rss.py [--frames 1000] [--work DIR] [--config configs/quickstart_student_conv.yaml]
[--threads 1] [--repeats 1]``. One test sequence of ``--frames`` annotation frames is generated with
``spiketrack data synth`` (DAVIS346 size), and an untrained checkpoint of the config's model is saved in the
checkpoint format (memory does not depend on the weights). Each mode then runs as its own ``spiketrack track``
process; its peak resident set size is read from ``os.wait4`` (the kernel's ``ru_maxrss`` of that process).
Prints a Markdown table: peak RSS and wall time per mode, and the ``--energy`` row's difference from plain
``track`` (issue 16's target: within 5 %).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_sequence(work: Path, frames: int, size: str, seed: int) -> Path:
    """A one-sequence dataset (test split) of ``frames`` frames, written by ``spiketrack data synth``."""
    data = work / "data"
    cmd = [sys.executable, "-m", "spiketrack.cli", "data", "synth", "--out", str(data), "--train", "0", "--test", "1",
           "--frames", f"{frames}:{frames}", "--size", size, "--seed", str(seed), "--no-rgb"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return data


def make_checkpoint(config: Path, path: Path) -> Path:
    """An untrained checkpoint of ``config``'s model, in the format training writes (format, version, kind,
    config, model)."""
    from spiketrack.config import load_config, to_dict
    from spiketrack.models import build_model
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from spiketrack.train.checkpoint import atomic_save

    cfg = load_config(config)
    model = build_model(cfg)
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": cfg.model.kind,
             "config": to_dict(cfg), "model": model.state_dict()}
    return atomic_save(state, path)


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one child process running ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    with proc.stderr:
        stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')}")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000, help="annotation frames of the sequence (default 1000)")
    ap.add_argument("--size", default="346x260", help="sensor WIDTHxHEIGHT (default 346x260)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart_student_conv.yaml")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary folder, removed at the end)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of each track process")
    ap.add_argument("--repeats", type=int, default=1, help="runs per mode; the table gives the largest peak")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="energy_rss-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = make_sequence(work, args.frames, args.size, args.seed)
        ckpt = make_checkpoint(args.config, work / "untrained.pt")
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        rows = {}
        for label, extra in (("track", []), ("track --energy", ["--energy"])):
            peaks, walls = [], []
            for r in range(args.repeats):
                out = work / f"results_{'energy' if extra else 'plain'}_{r}"
                cmd = [sys.executable, "-m", "spiketrack.cli", "track", "--config", str(args.config),
                       "--checkpoint", str(ckpt), "--dataset", str(data), "--out", str(out), "--quiet", *extra]
                peak, wall = peak_rss(cmd, env)
                peaks.append(peak)
                walls.append(wall)
            rows[label] = (max(peaks), min(walls))
    base = rows["track"][0]
    print(f"{args.frames} frames, {args.size}, {args.config.name} (untrained), {args.threads} thread(s)\n")
    print("| command | peak RSS MiB | vs plain track | wall s |")
    print("|---|---:|---:|---:|")
    for label, (peak, wall) in rows.items():
        print(f"| `spiketrack {label}` | {peak:.0f} | {100 * (peak - base) / base:+.1f} % | {wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
