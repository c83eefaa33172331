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
