"""Synthetic-benchmark generation speed (annotation frames per second) at 346x260 and 1280x720.

Measures, per size: (1) rendering + event simulation only (``render_sequence``, one process), and (2) the whole
``generate_benchmark`` path (render, simulate, compress and write the files incl. RGB) with 1 and N worker
processes. Prints a Markdown table for docs/benchmarks.md.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_synth.py [--sequences 4] [--frames 80] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from spiketrack.data.synth import generate_benchmark, render_sequence


def bench_render(width: int, height: int, sequences: int, frames: int) -> tuple[float, float, float]:
    """(frames/s, mean sub-frames per frame, mean events per frame) of render_sequence alone."""
    start = time.perf_counter()
    renders = events = 0
    for i in range(sequences):
        seq = render_sequence(f"b{i}", width, height, frames, 10_000 + i)
        renders += seq.renders
        events += len(seq.events)
    elapsed = time.perf_counter() - start
    n = sequences * frames
    return n / elapsed, renders / n, events / n


def bench_generate(width: int, height: int, sequences: int, frames: int, workers: int) -> tuple[float, float]:
    """(frames/s, MiB written per frame) of generate_benchmark into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_benchmark(tmp, sequences, 0, seed=1, size=(width, height), frames=(frames, frames),
                           workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.h5"))
    n = sequences * frames
    return n / elapsed, size / n / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", default="346x260,1280x720")
    args = parser.parse_args()
    print("| size | path | workers | frames/s | sub-frames/frame | events/frame | MiB/frame |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        n_seq = args.sequences if w * h <= 346 * 260 else max(1, args.sequences // 2)
        fps, sub, ev = bench_render(w, h, n_seq, args.frames)
        print(f"| {size} | render+simulate | 1 | {fps:.1f} | {sub:.1f} | {ev:.0f} | - |", flush=True)
        for workers in sorted({1, args.workers}):
            gfps, mib = bench_generate(w, h, n_seq * max(1, workers), args.frames, workers)
            print(f"| {size} | generate_benchmark (files, RGB) | {workers} | {gfps:.1f} | - | - | {mib:.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
