"""Benchmark of the event-data core (issue "Foundation and event data").

Measures on one CPU core:
- count-frame, timestep-bin and voxel-grid conversion throughput (events/s) for 1M and 10M events;
- reading one frame window from a 1280x720, 10M-event sequence file: time and bytes read.

Run: ``.venv/bin/python tools/bench_data.py [--out /tmp/bench]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import H5Sequence, open_sequence, write_sequence
from spiketrack.data.representations import count_frame, timestep_bins, voxel_grid

W, H = 1280, 720


def _events(n: int, t_end: int, seed: int = 0) -> EventArray:
    rng = np.random.default_rng(seed)
    return EventArray.from_arrays(
        np.sort(rng.integers(1, t_end + 1, n)), rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
    )


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class _CountingFile:
    """File object that counts the bytes h5py reads (h5py accepts Python file-like objects)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.bytes_read += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self._f.readinto(buf)
        self.bytes_read += n
        return n

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for the 10M-event test file (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("## representations (one core)")
    for n in (1_000_000, 10_000_000):
        ev = _events(n, 1_000_000)
        for name, fn in [
            ("count frame", lambda: count_frame(ev, H, W)),
            ("timestep bins T=4", lambda: timestep_bins(ev, H, W, 4, 0, 1_000_000)),
            ("voxel grid B=5", lambda: voxel_grid(ev, H, W, 5, 0, 1_000_000)),
        ]:
            dt = _best_of(fn)
            print(f"{name:<20} {n / 1e6:>4.0f}M events  {dt * 1e3:8.1f} ms  {n / dt / 1e6:7.1f} M events/s")

    out = Path(args.out or tempfile.mkdtemp())
    path = out / "bench_10M.h5"
    frames = 500
    ev = _events(10_000_000, 20_000_000)
    ft = np.linspace(40_000, 20_000_000, frames).astype(np.int64)
    start = time.perf_counter()
    write_sequence(path, name="bench", width=W, height=H, events=ev, frame_times=ft,
                   boxes=np.ones((frames, 4), np.float32), absent=np.zeros(frames, np.uint8))
    print(f"\n## sequence file: wrote 10M events in {time.perf_counter() - start:.2f} s, "
          f"{os.path.getsize(path) / 2**20:.1f} MiB on disk")
    k = 250
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with open_sequence(path) as seq:
            window = seq.frame_events(k)
        times.append(time.perf_counter() - start)
    counting = _CountingFile(path)
    with H5Sequence(path, fileobj=counting) as reader:
        opened = counting.bytes_read
        got = reader.frame_events(k)
        read_bytes = counting.bytes_read - opened
    counting.close()
    print(f"open + read frame {k} ({len(window)} events): best {min(times) * 1e3:.1f} ms; "
          f"window read alone: {read_bytes / 2**20:.2f} MiB read of {os.path.getsize(path) / 2**20:.1f} MiB "
          f"({len(got)} events; opening read {opened / 2**10:.0f} KiB)")


if __name__ == "__main__":
    main()
