"""Checkpoints: atomic writes survive a kill mid-write, keep-last-k, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from spiketrack.errors import CheckpointError
from spiketrack.models.checkpoint import load_checkpoint, read_checkpoint
from spiketrack.train import checkpoint as ck
from spiketrack.train.checkpoint import CheckpointManager


def _state(value: float) -> dict:
    return {"kind": "teacher", "config": {}, "model": {"w": torch.full((3,), value)}}


def test_keep_last_k_and_best(tmp_path: Path) -> None:
    m = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        m.save(_state(step), step, best=step == 2)
    assert [p.name for p in m.step_files()] == ["ckpt-00000002.pt", "ckpt-00000003.pt"]
    assert read_checkpoint(m.best_path)["model"]["w"][0].item() == 2.0
    path, state = m.latest()
    assert path.name == "ckpt-00000003.pt" and state["model"]["w"][0].item() == 3.0


def test_exception_during_write_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = CheckpointManager(tmp_path)
    m.save(_state(1.0), 1)

    def broken_save(obj, fh):  # noqa: ANN001
        fh.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        m.save(_state(2.0), 2)
    monkeypatch.undo()
    assert [p.name for p in m.step_files()] == ["ckpt-00000001.pt"]
    assert list(m.dir.glob(".*tmp*")) == []
    assert m.latest()[1]["model"]["w"][0].item() == 1.0


def test_killed_process_mid_write_leaves_previous_loadable(tmp_path: Path) -> None:
    """SIGKILL a process while it is inside a checkpoint write: the previous checkpoint still loads."""
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import os, time, torch
        from spiketrack.train import checkpoint as ck
        m = ck.CheckpointManager({str(tmp_path)!r})
        m.save({{"kind": "teacher", "config": {{}}, "model": {{"w": torch.ones(3)}}}}, 1)
        real_save = torch.save
        def slow_save(obj, fh):
            fh.write(b"half a checkpoint")
            fh.flush()
            open({str(marker)!r}, "w").close()
            time.sleep(60)
        ck.torch.save = slow_save
        m.save({{"kind": "teacher", "config": {{}}, "model": {{"w": torch.zeros(3)}}}}, 2)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.time() < deadline, "writer never started the second checkpoint"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    m = CheckpointManager(tmp_path)
    assert [p.name for p in m.step_files()] == ["ckpt-00000001.pt"]
    path, state = m.latest()
    assert torch.equal(state["model"]["w"], torch.ones(3))


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        read_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="other.pt.*format"):
        read_checkpoint(other)


def test_check_model_config_names_every_differing_model_key(tmp_path: Path) -> None:
    from spiketrack.config import ExperimentConfig
    from spiketrack.models.checkpoint import check_model_config

    stored = ExperimentConfig()
    stored.model.neuron.levels = 8
    stored.model.overrides = {"dims": [8, 16, 32, 48]}
    cfg = ExperimentConfig()
    cfg.model.neuron.levels = 4
    with pytest.raises(CheckpointError) as err:
        check_model_config(cfg, stored, tmp_path / "run.pt")
    text = str(err.value)
    assert "run.pt" in text and "model.neuron.levels: config 4, checkpoint 8" in text
    assert "model.overrides: config {}, checkpoint {'dims': [8, 16, 32, 48]}" in text
    # training-only and kernel settings, and non-model sections, may differ
    cfg = ExperimentConfig()
    cfg.model.neuron.levels, cfg.model.overrides = 8, {"dims": [8, 16, 32, 48]}
    cfg.model.pretrained, cfg.model.neuron.backend, cfg.model.neuron.surrogate = "/w.pth", "torch", "atan"
    cfg.tracking.size_update_rate, cfg.data.search_size = 0.2, 256
    check_model_config(cfg, stored, tmp_path / "run.pt")


def test_config_of_an_older_checkpoint_with_data_timesteps_still_reads() -> None:
    from spiketrack.config import load_config, to_dict
    from spiketrack.models.checkpoint import checkpoint_config

    stored = to_dict(load_config(None, ["model.timesteps=2"]))
    stored["data"]["timesteps"] = 2  # written before data.timesteps was merged into model.timesteps
    assert checkpoint_config({"config": stored}).model.timesteps == 2


# ------------------------------------------------------------------------------------------------ issue 31
def test_rotation_keeps_the_newest_loadable_checkpoint(tmp_path: Path) -> None:
    """A damaged newest file must not count as one of the last k: keep_last 1 would delete the good one."""
    m = CheckpointManager(tmp_path, keep_last=1)
    good = m.save(_state(1.0), 1)
    damaged = m.dir / "ckpt-00000099.pt"
    damaged.write_bytes(good.read_bytes()[:300])
    with pytest.warns(UserWarning, match="ckpt-00000099.pt"):
        path, state = m.latest()
    assert path == good and state["model"]["w"][0].item() == 1.0
    assert (m.dir / "ckpt-00000099.pt.unreadable").is_file()  # kept for inspection, not counted
    assert m.step_files() == [good]
    newer = m.save(_state(2.0), 2)
    assert m.step_files() == [newer] and read_checkpoint(newer)["model"]["w"][0].item() == 2.0


def test_resume_after_a_damaged_newest_checkpoint_continues_from_the_good_one(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from trainsynth import make_dataset, tiny_config

    from spiketrack.train.trainer import train

    root = make_dataset(tmp_path / "ds", count=2)
    run = tmp_path / "run"
    cfg = tiny_config(root, **{"train.keep_last": 1, "train.epochs": 2})
    first = train(cfg, run, progress=False, stop_after=1)
    assert first.step == 1
    ckpts = run / "checkpoints"
    (ckpts / "ckpt-00000099.pt").write_bytes((ckpts / "ckpt-00000001.pt").read_bytes()[:500])
    with pytest.warns(UserWarning, match="ckpt-00000099.pt"):
        result = train(cfg, run, progress=False, resume=True, stop_after=2)
    assert result.step == 2  # continued from step 1, not from scratch
    names = sorted(p.name for p in ckpts.iterdir())
    assert "ckpt-00000002.pt" in names and "ckpt-00000099.pt" not in names, names
    assert read_checkpoint(ckpts / "ckpt-00000002.pt")["step"] == 2


def test_full_disk_during_a_checkpoint_write_is_the_os_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    """torch's zip writer turns a failed write into 'inline_container.cc ... unexpected pos'; we report ENOSPC."""
    import builtins
    import errno

    from spiketrack.errors import environment_error_message

    class FullDisk:
        def __init__(self, fh, room: int) -> None:  # noqa: ANN001
            self.fh, self.room = fh, room

        def write(self, data) -> int:  # noqa: ANN001
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.fh.write(data)

        def __getattr__(self, name: str):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:  # noqa: ANN002
            self.fh.close()

    real_open = builtins.open
    monkeypatch.setattr(ck, "open", lambda p, mode="r", *a, **k: FullDisk(real_open(p, mode, *a, **k), 2000),
                        raising=False)
    m = CheckpointManager(tmp_path)
    with pytest.raises(OSError) as info:
        m.save({"kind": "teacher", "config": {}, "model": {"w": torch.randn(4096)}}, 3)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(m.dir / "ckpt-00000003.pt")
    assert environment_error_message(info.value).startswith(f"{m.dir / 'ckpt-00000003.pt'}: no space left")
    assert list(m.dir.iterdir()) == []  # no temporary file, no half-written checkpoint


def _pickled(path: Path, obj: object) -> Path:
    """A torch-style zip file whose pickle holds ``obj`` (protocol 2, as torch writes)."""
    import pickle
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/version", "3\n")
    return path


class _Payload:
    def __reduce__(self):  # noqa: ANN204 - loading this unsafely would call os.getcwd
        return (os.getcwd, ())


@pytest.mark.parametrize("reader", ["checkpoint", "student", "teacher"])
def test_unsafe_checkpoint_is_refused_in_our_words(tmp_path: Path, reader: str) -> None:
    """Never PyTorch's advice to load with weights_only=False, never ANSI codes; file, problem, 'for safety'."""
    from spiketrack.models.spiking.pretrained import read_student_state

    path = _pickled(tmp_path / "evil.pt", {"format": "spiketrack-checkpoint", "model": _Payload()})
    if reader == "checkpoint":
        call = lambda: read_checkpoint(path)  # noqa: E731
    elif reader == "student":
        call = lambda: read_student_state(path)  # noqa: E731
    else:
        from spiketrack.config import load_config
        from spiketrack.models.teacher import build, load_pretrained

        cfg = load_config(None, ["model.kind=teacher", "model.variant=quickstart", "data.template_size=32",
                                 "data.search_size=64"])
        call = lambda: load_pretrained(build(cfg), path)  # noqa: E731
    with pytest.raises(CheckpointError) as info:
        call()
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "refused for safety" in text and "posix.getcwd" in text, text
    assert "weights_only" not in text and "\x1b[" not in text and "\n" not in text


def test_damaged_checkpoint_message_is_ours(tmp_path: Path) -> None:
    m = CheckpointManager(tmp_path)
    path = m.save(_state(1.0), 1)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and ("damaged" in text or "truncated" in text), text
    assert "weights_only" not in text and "\x1b[" not in text


@pytest.mark.parametrize("data", [b"\x00" * 64, b"hello, not a checkpoint"])
def test_bytes_that_are_no_torch_file_are_not_called_unsafe(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f"{path}: not a checkpoint (neither a torch zip archive nor a pickle of tensors)"
