"""Benchmark: evaluate 300 sequences x 500 frames for 3 trackers (target < 2 s on one core).

Run: OMP_NUM_THREADS=1 .venv/bin/python tools/bench_evaluation.py [--sequences 300 --frames 500 --trackers 3]

Reports two timings (best of --repeats; wall and CPU time):
  * metrics: protocol curves + averaging, ground truth and predictions already in memory;
  * end to end: evaluate_trackers() reading an EventVOT-style ground-truth folder and one text result
    file per sequence and tracker (what `spiketrack evaluate` does, without plots).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from spiketrack.evaluation import evaluate_trackers, get_protocol  # noqa: E402
from spiketrack.evaluation.protocols import aggregate, sequence_curves  # noqa: E402


def make_data(n_seq: int, n_frames: int, n_trk: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gts, absents, preds = [], [], []
    for _ in range(n_seq):
        xy = 100 + np.cumsum(rng.normal(0, 2, (n_frames, 2)), axis=0)
        wh = np.clip(40 + np.cumsum(rng.normal(0, 0.5, (n_frames, 2)), axis=0), 5, None)
        gt = np.round(np.column_stack([xy, wh]), 1)
        absent = rng.random(n_frames) < 0.05
        gt[absent] = 0
        gts.append(gt)
        absents.append(absent)
        noisy = [gt + rng.normal(0, 3 + 5 * t, gt.shape) * [1, 1, 0.2, 0.2] for t in range(n_trk)]
        for p in noisy:
            p[:, 2:] = np.maximum(p[:, 2:], 1.0)
        preds.append(noisy)
    return gts, absents, preds


def write_files(root: Path, gts, absents, preds) -> list[Path]:
    data = root / "data"
    folders = [root / f"tracker{t}" for t in range(len(preds[0]))]
    for f in folders:
        f.mkdir(parents=True)
    for i, (gt, absent) in enumerate(zip(gts, absents)):
        d = data / f"seq{i:04d}"
        d.mkdir(parents=True)
        np.savetxt(d / "groundtruth.txt", gt, fmt="%.1f", delimiter=",")
        np.savetxt(d / "absent.txt", (~absent).astype(int), fmt="%d")
        for t, folder in enumerate(folders):
            np.savetxt(folder / f"seq{i:04d}.txt", preds[i][t], fmt="%.2f", delimiter=",")
            np.savetxt(folder / f"seq{i:04d}_time.txt", np.full(len(gt), 0.01), fmt="%.4f")
    return [data, *folders]


def best_of(fn, repeats: int) -> str:
    """Best wall time and best CPU time (process_time: less sensitive to other load on a shared machine)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return f"wall {min(wall):.3f} s, CPU {min(cpu):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=300)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--trackers", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    gts, absents, preds = make_data(args.sequences, args.frames, args.trackers)
    print(f"{args.sequences} sequences x {args.frames} frames x {args.trackers} trackers "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    for name in ("eventvot", "pytracking"):
        proto = get_protocol(name)

        def metrics_only(proto=proto):
            for t in range(args.trackers):
                aggregate(proto, [sequence_curves(proto, p[t], g, a) for g, a, p in zip(gts, absents, preds)])

        print(f"metrics only   [{name:10s}]: {best_of(metrics_only, args.repeats)}")
    with tempfile.TemporaryDirectory() as tmp:
        data, *folders = write_files(Path(tmp), gts, absents, preds)
        for name in ("eventvot", "pytracking"):
            t = best_of(lambda name=name: evaluate_trackers(data, folders, protocol=name), args.repeats)
            print(f"end to end     [{name:10s}]: {t}  (reads {args.sequences * (2 + 2 * args.trackers)} text files)")
        r = evaluate_trackers(data, folders)
        print(r.table())


if __name__ == "__main__":
    main()
