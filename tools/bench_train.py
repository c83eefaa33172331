"""Training throughput (samples/s) and peak memory of the quickstart teacher, student and distillation.

Usage: ``python tools/bench_train.py [--steps 6] [--batch 8] [--threads 2]``. Writes a small synthetic
dataset (a bright square moving over noise, 240x180, 40 frames per sequence) to a temporary folder and
times optimiser steps of the quickstart variants at 64/128 crops (crop factors of docs/data.md, "Event
representations and crops"), T = 4, one search
frame per sample (and n = 3 for the distillation run with the temporal Fourier term). Data loading is
included (``num_workers=0``); the first step is a warm-up and not timed. Peak memory is the process's
maximum resident set size (CPU) and ``torch.cuda.max_memory_allocated`` on a GPU, where bf16 AMP is used.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spiketrack.config import load_config
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.models import build_model
from spiketrack.train.checkpoint import CheckpointManager
from spiketrack.train.distributed import setup_distributed
from spiketrack.train.trainer import Trainer, seed_everything


def write_dataset(root: Path, count: int = 4, frames: int = 40, width: int = 240, height: int = 180) -> None:
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        w = h = float(rng.integers(20, 40))
        x0, y0 = rng.uniform(20, width - 60), rng.uniform(20, height - 60)
        vx, vy = rng.uniform(-2, 2, 2)
        times = (np.arange(frames) + 1) * 20_000
        boxes, parts = [], []
        for k in range(frames):
            x, y = float(np.clip(x0 + vx * k, 0, width - w)), float(np.clip(y0 + vy * k, 0, height - h))
            boxes.append([x, y, w, h])
            n_obj, n_noise = 3000, 1000
            ex = np.concatenate([rng.uniform(x, x + w, n_obj), rng.uniform(0, width, n_noise)])
            ey = np.concatenate([rng.uniform(y, y + h, n_obj), rng.uniform(0, height, n_noise)])
            t = np.sort(rng.integers(times[k] - 20_000 + 1, times[k] + 1, n_obj + n_noise))
            parts.append(EventArray.from_arrays(t, ex, ey, rng.integers(0, 2, n_obj + n_noise)))
        name = f"bench{i}"
        write_sequence(
            root / f"{name}.h5", name=name, width=width, height=height, events=EventArray.concatenate(parts),
            frame_times=times, boxes=np.asarray(boxes, np.float32), absent=np.zeros(frames, np.uint8),
        )
        names.append(name)
    write_split(root, "train", names)


def config(root: Path, kind: str, batch: int, num_search: int = 1):
    return load_config(
        None,
        [
            f"data.datasets=[{{root: '{root}'}}]", "data.template_size=64", "data.search_size=128",
            f"data.num_search={num_search}", f"model.kind={kind}", "model.variant=quickstart",
            f"train.batch_size={batch}", "train.epochs=1", "train.steps_per_epoch=1000",
            f"distill.fourier.enabled={'true' if num_search > 1 else 'false'}",
        ],
    )


def bench(trainer: Trainer, steps: int) -> float:
    """Samples/s over ``steps`` optimiser steps after one warm-up step."""
    loader = iter(trainer._loader(0, 0))
    trainer._optimizer_step([next(loader)])
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer._optimizer_step([next(loader)])
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * trainer.cfg.train.batch_size / (time.perf_counter() - t0)


def peak_memory_mib(device: torch.device) -> str:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU, {rss:.0f} MiB RSS"
    return f"{rss:.0f} MiB RSS (process peak so far)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = setup_distributed()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root)
        print(f"device: {info.device}, threads {args.threads}, batch {args.batch}, {args.steps} timed steps")
        print("| run | samples/s | peak memory |\n|---|---|---|")
        seed_everything(0)
        t_cfg = config(root, "teacher", args.batch)
        teacher = build_model(t_cfg)
        tr = Trainer(t_cfg, Path(tmp) / "t", teacher, info, progress=False)
        print(f"| teacher quickstart 64/128, events | {bench(tr, args.steps):.1f} | {peak_memory_mib(info.device)} |")
        s_cfg = config(root, "student", args.batch)
        tr = Trainer(s_cfg, Path(tmp) / "s", build_model(s_cfg), info, progress=False)
        print(f"| student quickstart 64/128, T=4 | {bench(tr, args.steps):.1f} | {peak_memory_mib(info.device)} |")
        d_cfg = config(root, "student", args.batch, num_search=3)
        tr = Trainer(d_cfg, Path(tmp) / "d", build_model(d_cfg), info, teacher=teacher.eval(), progress=False)
        rate = bench(tr, args.steps)
        print(f"| distill student <- teacher, n=3 search frames, all 4 KD terms | {rate:.1f} "
              f"(x3 pairs) | {peak_memory_mib(info.device)} |")
        assert not CheckpointManager(Path(tmp) / "t").step_files()


if __name__ == "__main__":
    main()
