"""Bad input never reaches the user as a traceback or a silent wrong answer (issue 16).

Each test builds one class of bad input in tmp_path, runs the CLI (``spiketrack.cli.main``) or the library,
and checks: exit code 2, one message naming the file and the field or key, and no partial output left.
"""

from __future__ import annotations

import errno
import json
import os
import re
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


# ------------------------------------------------------------------------------------------------ training data
def test_nan_box_in_training_sequence_is_refused_naming_file(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "train"))
    from trainsynth import make_dataset, tiny_config

    from spiketrack.errors import DataFormatError
    from spiketrack.train.trainer import train

    root = make_dataset(tmp_path / "ds", count=2)
    bad = root / "seq01.h5"
    with h5py.File(bad, "r+") as h5:
        h5["boxes"][5] = [np.inf, 3, 4, 5]
    with pytest.raises(DataFormatError) as info:
        train(tiny_config(root), tmp_path / "run", progress=False, stop_after=1)
    assert str(bad) in str(info.value) and "boxes" in str(info.value)
    assert not list((tmp_path / "run").glob("checkpoints/*.pt"))


def test_crop_refuses_a_non_finite_box():
    from spiketrack.data.crop import CropWindow
    from spiketrack.errors import DataFormatError

    with pytest.raises(DataFormatError, match="boxes"):
        CropWindow.around((np.nan, 1, 2, 3), 2.0)


def test_first_box_far_outside_the_image_is_refused(tmp_path, capsys):
    root, path = _dataset(tmp_path, mutate=lambda h5: h5["boxes"].__setitem__(0, [1e9, 1e9, 20, 16]))
    rc, err = _run(_track(root, tmp_path / "res"), capsys)
    assert rc == 2 and str(path) in err and "boxes[0]" in err and "outside" in err, err


# ------------------------------------------------------------------------------------------------ split lists
@pytest.mark.parametrize("line", ["../outside/x", "/etc/passwd"])
def test_split_line_outside_the_dataset_is_refused(tmp_path, capsys, line):
    root, _ = _dataset(tmp_path)
    (root / "test.txt").write_text(f"seq\n{line}\n")
    rc, err = _run(_track(root, tmp_path / "res"), capsys)
    assert rc == 2 and str(root / "test.txt") in err and "line 2" in err, err
    rc, err = _run(["evaluate", "--dataset", root, "--split", "test", "--results", tmp_path], capsys)
    assert rc == 2 and "line 2" in err, err


def test_empty_split_list_is_an_error(tmp_path, capsys):
    root, _ = _dataset(tmp_path)
    (root / "test.txt").write_text("# nothing\n")
    rc, err = _run(_track(root, tmp_path / "res"), capsys)
    assert rc == 2 and "test.txt" in err and "no sequences" in err, err


# ------------------------------------------------------------------------------------------------ config files
def test_config_file_errors_name_file_and_key(tmp_path, capsys):
    root, _ = _dataset(tmp_path)
    out = tmp_path / "res"
    dup = tmp_path / "dup.yaml"
    dup.write_text("tracking:\n  margin: 1\n  margin: 2\n")
    rc, err = _run(_track(root, out, "--config", dup), capsys)
    assert rc == 2 and str(dup) in err and "duplicate key 'margin'" in err and "line 3" in err, err
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    rc, err = _run(_track(root, out, "--config", latin), capsys)
    assert rc == 2 and str(latin) in err and "UTF-8" in err, err
    good = tmp_path / "good.yaml"
    good.write_text("tracking:\n  margin: 1\n")
    for value in (".nan", ".inf", "-.inf"):
        rc, err = _run(_track(root, out, "--config", good, "--set", f"tracking.margin={value}"), capsys)
        assert rc == 2 and f"--set tracking.margin={value}" in err and "finite" in err, err
        assert str(good) not in err
    rc, err = _run(_track(root, out, "--config", good, "--set", "tracking.nope=1"), capsys)
    assert rc == 2 and "--set tracking.nope=1" in err and str(good) not in err, err
    assert not out.exists() or not any(out.iterdir())


def test_model_variant_error_names_the_config_file(tmp_path, capsys):
    cfg = tmp_path / "student.yaml"
    cfg.write_text("model:\n  kind: student\n  variant: huge\n")
    rc, err = _run(["model", "summary", cfg, "--no-macs"], capsys)
    assert rc == 2 and str(cfg) in err and "model.variant" in err, err
    rc, err = _run(["model", "summary", BASELINE_CONFIG, "--no-macs", "--set", "model.variant=huge"], capsys)
    assert rc == 2 and "--set model.variant=huge" in err and "model.variant" in err, err


# ------------------------------------------------------------------------------------------------ checkpoints
def _tiny_checkpoint(tmp_path: Path) -> Path:
    import torch

    from spiketrack.config import load_config, to_dict
    from spiketrack.train.checkpoint import CheckpointManager

    cfg = load_config(None, [])
    state = {"kind": "student", "config": to_dict(cfg), "model": {"w": torch.randn(64, 64)}}
    return CheckpointManager(tmp_path / "run").save(state, step=1)


def test_checkpoint_with_flipped_bytes_is_refused(tmp_path):
    from spiketrack.errors import CheckpointError
    from spiketrack.train.checkpoint import read_checkpoint

    path = _tiny_checkpoint(tmp_path)
    read_checkpoint(path)
    data = bytearray(path.read_bytes())
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.file_size >= 4096)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 64
    for i in range(256):
        data[start + i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum") as exc:
        read_checkpoint(path)
    assert str(path) in str(exc.value)


def test_truncated_newest_checkpoint_is_named_when_skipped(tmp_path, capsys):
    import torch

    from spiketrack.config import load_config, to_dict
    from spiketrack.train.checkpoint import CheckpointManager

    state = {"kind": "student", "config": to_dict(load_config(None, [])), "model": {"w": torch.zeros(3)}}
    mgr = CheckpointManager(tmp_path / "run", keep_last=3)
    mgr.save(state, step=1)
    newest = mgr.save(state, step=2)
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="ckpt-00000002"):
        path, _ = mgr.latest()
    assert path.name == "ckpt-00000001.pt"
    assert str(newest) in capsys.readouterr().err


def test_resume_with_a_changed_config_is_refused(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "train"))
    from trainsynth import make_dataset, tiny_config

    from spiketrack.errors import ConfigError
    from spiketrack.train.trainer import train

    root = make_dataset(tmp_path / "ds", count=2)
    run = tmp_path / "run"
    train(tiny_config(root), run, progress=False, stop_after=1)
    before = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError) as info:
        train(tiny_config(root, **{"train.lr": 0.5, "train.epochs": 3}), run, progress=False, resume=True)
    msg = str(info.value)
    assert str(run / "config.yaml") in msg and "train.lr" in msg and "train.epochs" not in msg.split("(only")[0]
    assert (run / "config.yaml").read_text() == before
    # train.epochs alone may change on resume; any change with the explicit flag
    train(tiny_config(root, **{"train.epochs": 1}), run, progress=False, resume=True, stop_after=1)
    train(tiny_config(root, **{"train.lr": 0.5}), run, progress=False, resume=True, stop_after=1,
          allow_config_change=True)


def test_failed_track_leaves_no_claim_that_blocks_the_rerun(tmp_path, capsys):
    root, _ = _dataset(tmp_path)
    out = tmp_path / "res"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  variant: quickstart\n")
    rc, err = _run(["track", "--config", cfg, "--checkpoint", tmp_path / "missing.pt", "--dataset", root,
                    "--out", out, "--quiet"], capsys)
    assert rc == 2 and "missing.pt" in err
    assert not (out / "track_run.json").exists()
    rc, err = _run(_track(root, out), capsys)
    assert rc == 0, err
    assert (out / "seq.txt").is_file()


# ------------------------------------------------------------------------------------------------ outputs
def test_out_naming_a_file_is_refused_before_work(tmp_path, capsys):
    root, _ = _dataset(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, err = _run(_track(root, afile), capsys)
    assert rc == 2 and str(afile) in err and "folder" in err, err
    rc, err = _run(["data", "synth", "--out", afile, "--train", 1, "--test", 1, "--frames", "4:4",
                    "--size", "64x64"], capsys)
    assert rc == 2 and str(afile) in err, err
    rc, err = _run(["evaluate", "--dataset", root, "--results", tmp_path, "--plots", afile], capsys)
    assert rc == 2 and str(afile) in err, err
    rc, err = _run(["report", "--dataset", root, "--run", f"a={tmp_path}", "--out", afile], capsys)
    assert rc == 2 and str(afile) in err, err
    rc, err = _run(["energy", "--config", BASELINE_CONFIG, "--checkpoint", tmp_path / "none.pt", "--dataset", root,
                    "--out", tmp_path], capsys)
    assert rc == 2 and str(tmp_path) in err and "folder" in err, err
    rc, err = _run(["quickstart", "--work", afile / "w"], capsys)
    assert rc == 2 and str(afile) in err, err
    assert afile.read_text() == "x"


def test_unwritable_output_folder_is_one_line(tmp_path, capsys, monkeypatch):
    root, _ = _dataset(tmp_path)

    def denied(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", denied)
    rc, err = _run(_track(root, tmp_path / "res"), capsys)
    assert rc == 2 and "res" in err and "permission denied" in err.lower() and err.count("\n") == 1, err


def _enospc(self, *a, **k):
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def test_full_disk_while_tracking_leaves_no_partial_files(tmp_path, capsys, monkeypatch):
    root, _ = _dataset(tmp_path)
    out = tmp_path / "res"
    out.mkdir()
    monkeypatch.setattr(Path, "write_text", _enospc)
    rc, err = _run(_track(root, out), capsys)
    assert rc == 2 and "no space left" in err and str(out) in err, err
    assert sorted(p.name for p in out.iterdir()) == []


def test_full_disk_while_reporting_leaves_no_truncated_report(tmp_path, monkeypatch):
    from spiketrack.energy import report as report_mod

    out = tmp_path / "rep"
    monkeypatch.setattr(Path, "write_text", _enospc)
    with pytest.raises(OSError) as info:
        report_mod.write_report({"runs": [], "notes": [], "published_reference": []}, out)
    assert info.value.errno == errno.ENOSPC
    assert not (out / "report.json").exists() and not list(out.glob(".*tmp-*"))


def test_plot_is_written_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from spiketrack.atomic import atomic_path

    def fail_savefig(self, path, *a, **k):
        Path(path).write_bytes(b"")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Figure, "savefig", fail_savefig)
    target = tmp_path / "success.png"
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            Figure().savefig(tmp)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_full_disk_while_saving_a_checkpoint_names_it(tmp_path, monkeypatch):
    import torch

    from spiketrack.errors import environment_error_message
    from spiketrack.train.checkpoint import atomic_save

    def full(obj, fh, *a, **k):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "ckpt-00000001.pt"
    with pytest.raises(OSError) as info:
        atomic_save({"a": 1}, target)
    assert str(target) in environment_error_message(info.value)
    assert list(tmp_path.iterdir()) == []


def test_data_format_error_survives_a_worker_process():
    """Raised in a pool worker (``track --workers 2``), it must reach the parent as itself, not a broken pool."""
    import pickle

    from spiketrack.errors import DataFormatError

    err = pickle.loads(pickle.dumps(DataFormatError("a.h5", "events/t", "decreasing")))
    assert isinstance(err, DataFormatError) and str(err) == "a.h5 [events/t]: decreasing" and err.field == "events/t"


def test_full_disk_in_one_synth_worker_stops_the_run(tmp_path, capsys, monkeypatch):
    """``data synth --workers 2``: one sequence's write fails (ENOSPC): one line naming it, queued jobs dropped."""
    import multiprocessing
    import time

    from spiketrack.data import synth

    real_write = Path.write_bytes

    def write_bytes(self, data):  # the sequence writer's one write of its temporary file (small sequences)
        if self.name.startswith(".train_0001.h5.tmp-"):
            real_write(self, b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        if ".h5.tmp-" in self.name:
            time.sleep(0.3)  # the other jobs take a while, so the failure is seen while most are still queued
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    # fork: the workers inherit the patched writer (spawn would re-import it)
    monkeypatch.setattr(synth, "get_context", lambda method: multiprocessing.get_context("fork"))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    out = tmp_path / "synth"
    rc, err = _run(["data", "synth", "--out", out, "--train", 12, "--test", 0, "--frames", "4:4", "--size", "64x64",
                    "--workers", 2], capsys)
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and "synth:" not in line]  # progress bar
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(out / "train_0001.h5") in lines[0] and "no space left" in lines[0], err
    names = sorted(p.name for p in out.iterdir())
    assert "train_0001.h5" not in names and not [n for n in names if ".tmp-" in n], names
    assert len(names) <= 6 and "train_0011.h5" not in names, names  # the queued jobs were not run
    assert "train.txt" not in names


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    import subprocess

    from spiketrack.atomic import clean_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".ckpt-00000003.pt.tmp-{pid}"
    stale.write_bytes(b"half")
    mine = tmp_path / f".x.txt.tmp-{os.getpid()}"
    mine.write_text("live")
    assert clean_stale_temps(tmp_path) == [stale]
    assert mine.exists() and not stale.exists()


# ------------------------------------------------------------------------------------------------ reports, energy
def test_energy_json_with_negative_values_is_refused(tmp_path):
    from spiketrack.energy.dataset import ENERGY_FORMAT, read_energy
    from spiketrack.errors import DataFormatError

    path = tmp_path / "e.json"
    path.write_text(json.dumps({"format": ENERGY_FORMAT, "overall": {"energy_mj_per_frame": -1, "frames": -1}}))
    with pytest.raises(DataFormatError) as info:
        read_energy(path)
    assert str(path) in str(info.value) and "overall.energy_mj_per_frame" in str(info.value)


def test_report_protocol_is_checked_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["report", "--dataset", str(tmp_path), "--run", f"a={tmp_path}", "--out", str(tmp_path / "r"),
              "--protocol", "matlab"])
    assert info.value.code == 2 and "--protocol" in capsys.readouterr().err


def test_inf_rows_get_a_note(tmp_path):
    from spiketrack.evaluation.evaluate import evaluate_trackers

    root, _ = _dataset(tmp_path)
    res = tmp_path / "res"
    res.mkdir()
    rows = ["30,40,20,16"] * 8
    rows[3] = "inf,40,20,16"
    (res / "seq.txt").write_text("\n".join(rows) + "\n")
    result = evaluate_trackers(root, [res], split="test")
    assert any("infinite" in n and "seq.txt" in n and "4" in n for n in result.notes), result.notes


def test_closed_stdout_pipe_ends_quietly(tmp_path):
    """``spiketrack model summary ... | head``: the reader is gone before the output is written."""
    import subprocess

    r, w = os.pipe()
    os.close(r)  # nobody will read: every write gets EPIPE
    proc = subprocess.run([sys.executable, "-m", "spiketrack.cli", "model", "summary", str(BASELINE_CONFIG),
                           "--no-macs"], cwd=ROOT, stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0
