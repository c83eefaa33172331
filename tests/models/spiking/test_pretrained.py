"""model.pretrained for the student: own state dicts and spiketrack checkpoints load, partial loads are reported,
bad files are CheckpointErrors naming the file, and a checkpoint rebuild does not need the pretrained file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from spiketrack.config import load_config, to_dict
from spiketrack.errors import CheckpointError
from spiketrack.models import build_model
from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint

SETS = ["model.kind=student", "model.variant=quickstart", "model.timesteps=1", "data.template_size=32",
        "data.search_size=64"]


def build(seed: int, *extra: str) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(load_config(None, [*SETS, *extra]))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_plain_state_dict_loads_every_key(tmp_path: Path) -> None:
    source = build(1)
    path = tmp_path / "student.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)  # a DDP-saved dict
    model = build(2, f"model.pretrained={path}")
    assert same_weights(model, source) and not same_weights(build(2), source)
    report = model.pretrained_report
    assert report.missing == [] and report.unexpected == [] and len(report.loaded) == len(source.state_dict())


def test_partial_state_dict_is_reported_not_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = build(1).state_dict()
    backbone = {k: v for k, v in source.items() if k.startswith("backbone.")}
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": {**backbone, "foreign.weight": torch.zeros(3)}}, path)
    with caplog.at_level(logging.WARNING):
        model = build(2, f"model.pretrained={path}")
    report = model.pretrained_report
    assert report.loaded == sorted(backbone)
    assert report.unexpected == ["foreign.weight"]
    assert report.missing and all(not k.startswith("backbone.") for k in report.missing)
    assert any(k.startswith("head.") for k in report.missing)
    assert "foreign.weight" in caplog.text and "missing" in caplog.text
    fresh = build(2).state_dict()
    own = model.state_dict()
    assert all(torch.equal(own[k], source[k]) for k in backbone)
    assert all(torch.equal(own[k], fresh[k]) for k in report.missing)  # kept at their initialisation


def _checkpoint(tmp_path: Path, kind: str, cfg_sets: list[str], state: dict, name: str = "") -> Path:
    path = tmp_path / f"{name or kind}.ckpt"
    cfg = load_config(None, cfg_sets)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, "config": to_dict(cfg),
                "model": state}, path)
    return path


def test_spiketrack_checkpoint_loads_and_a_rebuild_does_not_need_the_pretrained_file(tmp_path: Path) -> None:
    source = build(1)
    init = _checkpoint(tmp_path, "student", SETS, source.state_dict())
    model = build(2, f"model.pretrained={init}")
    assert same_weights(model, source)
    # a model trained from those weights is rebuilt from its checkpoint after the pretrained file is gone
    trained = _checkpoint(tmp_path, "student", [*SETS, f"model.pretrained={init}"], build(3).state_dict(), "trained")
    init.unlink()
    rebuilt, cfg = load_checkpoint(trained)
    assert cfg.model.pretrained == str(init) and same_weights(rebuilt, build(3))


def test_bad_files_are_checkpoint_errors_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(CheckpointError, match="nowhere.pt"):
        build(0, f"model.pretrained={missing}")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="junk.pt"):
        build(0, f"model.pretrained={junk}")
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.layer.0.weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt.*no key fits"):
        build(0, f"model.pretrained={foreign}")
    wrong = tmp_path / "wrong.pt"
    state = build(0).state_dict()
    key = next(k for k, v in state.items() if v.ndim == 4)
    torch.save({key: torch.zeros(1, 1, 1, 1)}, wrong)
    with pytest.raises(CheckpointError, match=f"wrong.pt \\[{key}\\]: shape"):
        build(0, f"model.pretrained={wrong}")
    teacher = _checkpoint(tmp_path, "teacher", ["model.kind=teacher"], {"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="teacher"):
        build(0, f"model.pretrained={teacher}")
