"""Small synthetic sequence files and configs for the training tests (a square moving over noise).

A uniquely named module (not conftest) so `from trainsynth import ...` cannot pick up another folder's conftest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spiketrack.config import ExperimentConfig, load_config
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence


def write_square_sequence(path: Path, seed: int, frames: int = 12, size: int = 64, rgb: bool = True) -> None:
    """A bright square moving on a line; events are drawn densely on its leading/trailing edges plus noise."""
    rng = np.random.default_rng(seed)
    w = h = int(rng.integers(10, 16))
    x0, y0 = rng.uniform(8, size - w - 8, size=2)
    vx, vy = rng.uniform(-1.5, 1.5, size=2)
    times = (np.arange(frames) + 1) * 10_000
    boxes, ts, xs, ys, ps, images = [], [], [], [], [], []
    for k in range(frames):
        x = float(np.clip(x0 + vx * k, 0, size - w))
        y = float(np.clip(y0 + vy * k, 0, size - h))
        boxes.append([x, y, w, h])
        t0 = times[k] - 10_000
        n_obj, n_noise = 300, 40
        ex = rng.uniform(x, x + w, n_obj)
        ey = rng.uniform(y, y + h, n_obj)
        nx, ny = rng.uniform(0, size, n_noise), rng.uniform(0, size, n_noise)
        xs.append(np.concatenate([ex, nx]))
        ys.append(np.concatenate([ey, ny]))
        ps.append(rng.integers(0, 2, n_obj + n_noise))
        ts.append(np.sort(rng.integers(t0 + 1, times[k] + 1, n_obj + n_noise)))
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        img[int(y) : int(y) + h, int(x) : int(x) + w] = 220
        images.append(img)
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    ev = EventArray.from_arrays(
        t[order],
        np.clip(np.concatenate(xs), 0, size - 1)[order],
        np.clip(np.concatenate(ys), 0, size - 1)[order],
        np.concatenate(ps)[order],
    )
    absent = np.zeros(frames, np.uint8)
    boxes_np = np.asarray(boxes, np.float32)
    absent[frames // 2] = 1  # one invisible frame: the sampler must skip it
    boxes_np[frames // 2] = 0
    write_sequence(
        path,
        name=path.stem,
        width=size,
        height=size,
        events=ev,
        frame_times=times,
        boxes=boxes_np,
        absent=absent,
        rgb=np.stack(images) if rgb else None,
    )


def make_dataset(root: Path, count: int = 3, seed: int = 0) -> Path:
    names = []
    for i in range(count):
        name = f"seq{i:02d}"
        write_square_sequence(root / f"{name}.h5", seed + i)
        names.append(name)
    write_split(root, "train", names)
    return root


def tiny_config(root: Path, kind: str = "student", **overrides: object) -> ExperimentConfig:
    """A config small enough for CPU tests: 32/64 px crops, quickstart variants made smaller."""
    sets = [
        f"data.datasets=[{{root: '{root}', weight: 1.0}}]",
        "data.template_size=32",
        "data.search_size=64",
        "data.samples_per_epoch=8",
        "data.max_gap=5",
        f"model.kind={kind}",
        "model.variant=quickstart",
        "model.timesteps=2",
        "train.batch_size=2",
        "train.epochs=1",
        "train.lr=0.001",
        "train.warmup_epochs=0",
        "train.grad_clip=1.0",
        "train.log_every=1",
    ]
    if kind == "teacher":
        sets += ["model.overrides={dim: 32, depth: 2, heads: 2, head_channels: 16}"]
    else:
        sets += ["model.overrides={dims: [8, 16, 32, 48], depths: [1, 1], memory_points: [0, 1], heads: 2, head_channels: 16}"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(None, sets)
