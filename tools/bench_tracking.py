"""Frames/s of the whole tracking runner (data loading, representation, model, post-processing) per model.

Usage: ``python tools/bench_tracking.py [--frames 30] [--tiny-frames 6] [--sequences 2] [--workers 1]
[--device cpu|cuda] [--skip-tiny]``. A synthetic dataset (DAVIS346-sized sensor, a box moving over
background noise events) is written to a temporary folder; each model (freshly initialised: speed does not
depend on the weights) tracks it through :func:`spiketrack.tracking.runner.track_dataset`, exactly as
``spiketrack track`` does. Prints a Markdown table: frames/s from the per-frame times, and the share of the
four stages, so the slowest stage is known.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from spiketrack.config import load_config
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.models import build_model
from spiketrack.tracking.runner import BASELINE, track_dataset
from spiketrack.tracking.timing import STAGES

WIDTH, HEIGHT = 346, 260  # DAVIS346 sensor
FRAME_US = 20_000  # 50 Hz annotations


def synthetic_sequence(path: Path, name: str, frames: int, seed: int, noise_per_frame: int = 3000) -> None:
    """A 40x30 box moving at constant velocity; its pixels fire 4 events per frame, plus uniform noise."""
    rng = np.random.default_rng(seed)
    w, h = 40, 30
    x0, y0 = rng.uniform(60, 120), rng.uniform(60, 100)
    vx, vy = rng.uniform(-2, 2, size=2)
    boxes, parts = [], []
    times = np.arange(1, frames + 1, dtype=np.int64) * FRAME_US
    for k in range(frames):
        bx, by = x0 + vx * k, y0 + vy * k
        boxes.append([bx, by, w, h])
        n_obj = w * h * 4
        ex = np.concatenate([rng.uniform(bx, bx + w, n_obj), rng.uniform(0, WIDTH, noise_per_frame)])
        ey = np.concatenate([rng.uniform(by, by + h, n_obj), rng.uniform(0, HEIGHT, noise_per_frame)])
        et = rng.integers(times[k] - FRAME_US + 1, times[k] + 1, ex.size)
        order = np.argsort(et, kind="stable")
        parts.append(EventArray.from_arrays(et[order], ex[order], ey[order], rng.integers(0, 2, ex.size)))
    write_sequence(
        path / f"{name}.h5", name=name, width=WIDTH, height=HEIGHT, events=EventArray.concatenate(parts),
        frame_times=times, boxes=np.array(boxes, np.float32), absent=np.zeros(frames, np.uint8),
    )


def make_dataset(root: Path, sequences: int, frames: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"seq{i}" for i in range(sequences)]
    for i, n in enumerate(names):
        synthetic_sequence(root, n, frames, seed=i)
    write_split(root, "test", names)
    return root


def case_config(kind: str, variant: str, zs: int, xs: int, t: int = 4):
    return load_config(None, [f"model.kind={kind}", f"model.variant={variant}", f"model.timesteps={t}",
                              f"data.template_size={zs}", f"data.search_size={xs}"])


def run_case(label: str, cfg, tracker, data: Path, out: Path, workers: int, device: str) -> str:
    summary = track_dataset(cfg, tracker, data, "test", out, workers=workers, device=device, progress=False)
    per_frame = {s: 1000 * summary.stages.get(s, 0.0) / max(summary.frames, 1) for s in STAGES}
    stages = " | ".join(f"{per_frame[s]:.1f}" for s in STAGES)
    return (f"| {label} | {workers} | {summary.frames} | {summary.fps:.2f} | {summary.frames / summary.wall_seconds:.2f} "
            f"| {stages} | {summary.slowest_stage} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30, help="frames per sequence for baseline/quickstart models")
    p.add_argument("--tiny-frames", type=int, default=6, help="frames per sequence for the tiny models")
    p.add_argument("--sequences", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the main process (workers use 1)")
    p.add_argument("--skip-tiny", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch threads {torch.get_num_threads()}, device {args.device}, {args.sequences} sequences")
    print("| tracker | workers | frames | frames/s (per-frame times) | frames/s (wall) "
          "| data ms | representation ms | model ms | postprocess ms | slowest |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        short = make_dataset(tmp / "short", args.sequences, args.frames)
        tiny = make_dataset(tmp / "tiny", args.sequences, args.tiny_frames)
        cases = [
            ("event-density baseline", case_config("student", "quickstart", 64, 128), BASELINE, short),
            ("student quickstart 64/128 T=4", case_config("student", "quickstart", 64, 128), None, short),
            ("teacher quickstart 64/128 (events)", case_config("teacher", "quickstart", 64, 128), None, short),
        ]
        if not args.skip_tiny:
            cases += [
                ("student tiny 128/256 T=4", case_config("student", "tiny", 128, 256), None, tiny),
                ("teacher ViT-tiny 128/256 (events)", case_config("teacher", "tiny", 128, 256), None, tiny),
            ]
        for i, (label, cfg, tracker, data) in enumerate(cases):
            model = tracker if tracker == BASELINE else build_model(cfg)
            device = "cpu" if tracker == BASELINE else args.device
            print(run_case(label, cfg, model, data, tmp / f"out{i}", args.workers, device), flush=True)


if __name__ == "__main__":
    main()
