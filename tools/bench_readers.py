"""Conversion speed of the public-dataset readers (events per second), for docs/benchmarks.md.

Builds, in a temporary folder, (1) an EventVOT-layout sequence whose ``<seq>.csv`` holds N synthetic
1280 x 720 events and (2) COESOT-layout sequences holding copies of the real DAVIS346 recording
``../shared/data/davis346_road/recording.aedat4`` (78,830 events, 59 APS frames), then times
``convert_dataset`` (read + write native HDF5) and the in-place read alone.

    .venv/bin/python tools/bench_readers.py [--events 2000000] [--davis-copies 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from spiketrack.data.readers import open_public_dataset
from spiketrack.data.readers.convert import convert_dataset

ROOT = Path(__file__).resolve().parents[1]
ROAD = ROOT.parent / "shared" / "data" / "davis346_road" / "recording.aedat4"


def make_eventvot(root: Path, n_events: int, n_frames: int = 499) -> None:
    rng = np.random.default_rng(0)
    name = "recording_2022-10-10_17-28-38"
    folder = root / name
    folder.mkdir(parents=True)
    t = np.sort(rng.integers(0, 10_000_000, n_events))
    table = np.stack([rng.integers(0, 1280, n_events), rng.integers(0, 720, n_events),
                      rng.integers(0, 2, n_events), t], axis=1)
    np.savetxt(folder / f"{name}.csv", table, fmt="%d", delimiter=",")
    np.savetxt(folder / "groundtruth.txt", np.tile([[100, 100, 50, 40]], (n_frames, 1)), fmt="%d", delimiter=",")
    np.savetxt(folder / "absent.txt", np.ones(n_frames), fmt="%d")


def make_coesot(root: Path, copies: int) -> None:
    for i in range(copies):
        folder = root / f"dvSave-2021_07_30_11_04_{i:02d}"
        folder.mkdir(parents=True)
        shutil.copyfile(ROAD, folder / f"{folder.name}.aedat4")
        np.savetxt(folder / "groundtruth.txt", np.tile([[100, 100, 50, 40]], (59, 1)), fmt="%d", delimiter=",")
        np.savetxt(folder / "absent.txt", np.ones(59), fmt="%d")


def bench(fmt: str, src: Path, work: Path, repeat: int, rgb: bool) -> dict:
    best_convert, best_read, events = float("inf"), float("inf"), 0
    for r in range(repeat):
        ds = open_public_dataset(fmt, src)
        start = time.perf_counter()
        events = 0
        for name in ds.names():
            with ds.open(name) as seq:
                events += len(seq.events)
        best_read = min(best_read, time.perf_counter() - start)
        out = work / f"out_{fmt}_{r}"
        start = time.perf_counter()
        summary = convert_dataset(fmt, src, out, rgb=rgb, progress=False)
        best_convert = min(best_convert, time.perf_counter() - start)
        assert summary.ok, summary.report()
        shutil.rmtree(out)
    return {"format": fmt, "events": events, "read_s": best_read, "convert_s": best_convert,
            "read_ev_s": events / best_read, "convert_ev_s": events / best_convert}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the EventVOT CSV")
    parser.add_argument("--davis-copies", type=int, default=4, help="COESOT sequences (copies of the real recording)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_eventvot(work / "eventvot", args.events)
        rows = [bench("eventvot", work / "eventvot", work, args.repeat, rgb=False)]
        if ROAD.is_file():
            make_coesot(work / "coesot", args.davis_copies)
            rows.append(bench("coesot", work / "coesot", work, args.repeat, rgb=False))
            row = bench("coesot", work / "coesot", work, args.repeat, rgb=True)
            row["format"] = "coesot + APS frames"
            rows.append(row)
        else:
            print(f"{ROAD} not found: AEDAT 4 benchmark skipped")
    print("| layout | events | read in place | events/s | convert (read + write .h5) | events/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['format']} | {r['events']:,} | {r['read_s']:.2f} s | {r['read_ev_s']:,.0f} | "
              f"{r['convert_s']:.2f} s | {r['convert_ev_s']:,.0f} |")


if __name__ == "__main__":
    main()
