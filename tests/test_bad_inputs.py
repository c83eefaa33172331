"""Bad input never reaches the user as a traceback or a silent wrong answer (issue 16).

Each test builds one class of bad input in tmp_path, runs the CLI (``spiketrack.cli.main``) or the library,
and checks: exit code 2, one message naming the file and the field or key, and no partial output left.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "tracking"))

from tracking_helpers import moving_box_sequence, write_dataset  # noqa: E402

from spiketrack.cli import main  # noqa: E402
from spiketrack.data.h5seq import save_sequence, validate_sequence  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE_CONFIG = ROOT / "configs" / "quickstart_student.yaml"


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def _dataset(tmp_path: Path, rgb: bool = False, mutate=None, name: str = "seq") -> tuple[Path, Path]:
    """A one-sequence dataset (train and test lists); ``mutate(h5file)`` edits the file afterwards."""
    root = tmp_path / "ds"
    seq = moving_box_sequence(name, frames=8)
    root.mkdir(parents=True, exist_ok=True)
    frames = None
    if rgb:
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 255, (seq.num_frames, seq.height, seq.width, 3), dtype=np.uint8)
    path = save_sequence(root / f"{name}.h5", seq, rgb=frames)
    for split in ("train", "test"):
        (root / f"{split}.txt").write_text(f"{name}\n")
    if mutate is not None:
        with h5py.File(path, "r+") as h5:
            mutate(h5)
    return root, path


def _corrupt_chunk(path: Path, dataset: str, chunk: int = 0) -> None:
    """Overwrite bytes inside one compressed chunk of ``dataset`` (found via h5py's chunk info)."""
    with h5py.File(path, "r") as h5:
        info = h5[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + min(8, info.size // 4))
        fh.write(b"\xff" * max(8, min(64, info.size // 2)))


def _track(root: Path, out: Path, *extra: str) -> list[str]:
    return ["track", "--tracker", "baseline", "--dataset", root, "--out", out, "--quiet", *extra]


# ------------------------------------------------------------------------------------------------ sequence files
@pytest.mark.parametrize("dataset", ["events/x", "frames/rgb"])
def test_corrupt_chunk_is_reported_by_validate_and_track(tmp_path, capsys, dataset):
    root, path = _dataset(tmp_path, rgb=True)
    _corrupt_chunk(path, dataset)
    problems = validate_sequence(path)
    assert problems and problems[0].field.startswith(dataset), problems
    rc, err = _run(["data", "validate", root], capsys)
    assert rc != 0
    out = tmp_path / "res"
    rc, err = _run(_track(root, out), capsys)
    if dataset == "events/x":  # the baseline reads no intensity frames; events are checked when opened
        assert rc == 2 and str(path) in err and dataset in err, err
        assert not any(out.glob("seq*.txt"))


@pytest.mark.parametrize(
    "field, mutate",
    [
        ("events/p", lambda h5: h5["events/p"].__setitem__(slice(0, 5), 7)),
        ("events/t", lambda h5: h5["events/t"].__setitem__(slice(0, 2), [500, 10])),
        ("frames/t", lambda h5: h5["frames/t"].__setitem__(3, h5["frames/t"][2])),
        ("events/x", lambda h5: h5["events/x"].__setitem__(4, 5000)),
        ("boxes", lambda h5: h5["boxes"].__setitem__(4, [np.nan, 1, 2, 3])),
        ("boxes", lambda h5: h5["boxes"].__setitem__(4, [10, 10, -5, 3])),
    ],
)
def test_readers_refuse_what_validate_flags(tmp_path, capsys, field, mutate):
    root, path = _dataset(tmp_path, mutate=mutate)
    out = tmp_path / "res"
    rc, err = _run(_track(root, out), capsys)
    assert rc == 2 and str(path) in err and field in err, err
    assert not (out / "seq.txt").exists() and not (out / "track_run.json").exists()
    from spiketrack.data.dataset import SequenceDataset
    from spiketrack.errors import DataFormatError

    with pytest.raises(DataFormatError, match=field.replace("/", ".")):
        SequenceDataset(root).open("seq")


# ------------------------------------------------------------------------------------------------ orphan workers
def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (a container's init may not reap it at once)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_track_workers_die_with_a_killed_parent(tmp_path):
    import signal
    import subprocess
    import time

    root = tmp_path / "ds"
    seqs = [moving_box_sequence(f"s{i}", frames=120, velocity=(1, 0), width=320, height=240) for i in range(12)]
    write_dataset(root, seqs)
    cmd = [sys.executable, "-m", "spiketrack.cli", "track", "--tracker", "baseline", "--dataset", str(root),
           "--out", str(tmp_path / "res"), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.02)
        assert len(workers) >= 2, "the workers did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.05)
        survivors = [w for w in workers if _alive(w)]
        for w in survivors:
            os.kill(w, signal.SIGKILL)
        assert not survivors, f"workers {survivors} outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
