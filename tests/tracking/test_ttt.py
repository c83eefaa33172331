"""Test-time tuning (tracking.ttt): off by default, tunes only LoRA adapters after n frames, changes the outputs,
charges the tuning to the sequence's energy apart, and leaves the model as it was for the next sequence."""

from __future__ import annotations

import pytest
import torch
from tracking_helpers import moving_box_sequence, small_config

from spiketrack.energy.meter import BACKWARD_DENSE_FACTOR, EnergyMeter
from spiketrack.models import build_model
from spiketrack.models.lora import LoRALinear
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.runner import track_sequence
from spiketrack.tracking.tracker import ModelTracker

TTT = {"ttt.enabled": True, "ttt.frames": 2, "ttt.epochs": 2, "ttt.rank": 4, "asr": False}


def _frame(seq, k: int) -> TrackingFrame:
    return TrackingFrame(k, seq.frame_events(k), *seq.frame_window(k), seq.width, seq.height)


def _calibrated(cfg, seq) -> torch.nn.Module:
    """The model with BN statistics from the sequence's own first crops, so the untrained student spikes (eval)."""
    from spiketrack.data.crop import CropWindow

    torch.manual_seed(0)
    model = build_model(cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    probe = ModelTracker(model, cfg)
    d = cfg.data
    template = probe._input(_frame(seq, 0), CropWindow.around(seq.boxes[0], d.template_factor), d.template_size, True)
    search = probe._input(_frame(seq, 1), CropWindow.around(seq.boxes[0], d.search_factor), d.search_size)
    with torch.no_grad():
        model.train()(template, search)
    return model.eval()


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_off_by_default() -> None:
    cfg = small_config("student")
    assert not cfg.tracking.ttt.enabled
    assert ModelTracker(build_model(cfg), cfg).ttt is None


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_tuning_merges_the_adapters_and_the_next_sequence_starts_from_the_trained_weights(kind: str) -> None:
    cfg = small_config(kind, **TTT)
    seq = moving_box_sequence(frames=5)
    model = _calibrated(cfg, seq)
    before = _state(model)
    tracker = ModelTracker(model, cfg)
    targets = set(tracker.ttt.targets)
    tracker.initialize(_frame(seq, 0), seq.boxes[0])
    tracker.track(_frame(seq, 1))
    assert not tracker.ttt.tuned and not any(isinstance(m, LoRALinear) for m in model.modules())
    search = tracker._input(_frame(seq, 2), tracker.last_window, cfg.data.search_size)  # frame 2's crop, pre-tuning
    with torch.no_grad():
        untuned = model.track(search, tracker.memory)["score_map"]
    tracker.track(_frame(seq, 2))  # the second pseudo-label: tuning runs now
    assert tracker.ttt.tuned and len(tracker.ttt.losses) == 2
    # the adapters are merged: no wrapper is left, only the adapted linears' weights changed
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    now = model.state_dict()
    assert now.keys() == before.keys()
    changed = {k for k in before if not torch.equal(now[k], before[k])}
    assert changed and changed <= {f"{t}.weight" for t in targets}
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen by the tuning
    with torch.no_grad():
        tuned = model.track(search, tracker.memory)["score_map"]  # the memory was encoded again after tuning
    assert not torch.allclose(tuned, untuned)
    tracker.track(_frame(seq, 3))
    tracker.finish()
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())


def test_runner_removes_adapters_and_energy_lists_the_tuning_apart() -> None:
    cfg = small_config("student", **TTT)
    seq = moving_box_sequence(frames=5)
    model = _calibrated(cfg, seq)
    before = _state(model)
    meter = EnergyMeter.from_config(model, cfg)
    meter.keep_records = True
    tracker = ModelTracker(model, cfg, meter=meter)
    result = track_sequence(seq, tracker)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    summary = meter.summary(frames=len(result.times))
    tuning = summary["kinds"]["test_time_tuning"]
    assert tuning["calls"] == 2 + 1  # two SGD steps and the re-encoded template
    frame2 = summary["per_frame"][2]["kinds"]
    assert frame2.count("test_time_tuning") == 3 and "search" in frame2
    steps = [r for r in meter.records if r.kind == "test_time_tuning" and r.backward_mac]
    assert len(steps) == 2
    for r in steps:  # backward: 2 x the forward's dense MACs, on top of the forward's own operations
        assert r.backward_mac == BACKWARD_DENSE_FACTOR * sum(lay.dense_mac for lay in r.report.layers)
    encode = [r for r in meter.records if r.kind == "test_time_tuning" and not r.backward_mac]
    assert len(encode) == 1
    # the template re-encoded after tuning runs the merged weights: the first encoding's dense MACs, no adapter
    assert encode[0].report.total_mac == summary["kinds"]["template_init"]["mac"]
    assert not any(".lora_" in lay.name for lay in encode[0].report.layers)
    total = summary["total"]
    assert total["energy_mj"] == pytest.approx(sum(k["energy_mj"] for k in summary["kinds"].values()))
    # searches after tuning run the same layers as before it: the adapters cost nothing per frame once merged
    early = [r for r in meter.records if r.kind == "search" and r.frame == 1]
    later = [r for r in meter.records if r.kind == "search" and r.frame > 2]
    assert early and later, [(r.kind, r.frame) for r in meter.records]
    for r in later:
        assert [lay.name for lay in r.report.layers] == [lay.name for lay in early[0].report.layers]
        assert r.report.total_mac == early[0].report.total_mac
    plain = EnergyMeter.from_config(model, small_config("student"))
    with torch.no_grad(), plain.measure("search"):
        pass
    assert "test_time_tuning" not in plain.summary()["kinds"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("drop_events", 1.0, "tracking.ttt.drop_events"), ("lr", -0.01, "tracking.ttt.lr': expected a learning rate"),
    ("lr", 0.0, "tracking.ttt.lr"), ("frames", 0, "tracking.ttt.frames"), ("rank", 0, "tracking.ttt.rank"),
    ("momentum", 1.5, "tracking.ttt.momentum"), ("targets", "[qkv, conv9]", "tracking.ttt.targets"),
    ("targets", "[]", "tracking.ttt.targets"),
])
def test_bad_settings_are_config_errors(key: str, value: object, expected: str) -> None:
    from spiketrack.errors import ConfigError

    cfg = small_config("student", **{**TTT, f"ttt.{key}": value})
    with pytest.raises(ConfigError, match=expected):
        ModelTracker(build_model(cfg), cfg)


def test_the_conv_only_deployable_student_is_refused_when_the_tracker_is_built() -> None:
    from spiketrack.config import load_config
    from spiketrack.errors import ConfigError

    cfg = load_config("configs/quickstart_student_deployable.yaml", ["tracking.ttt.enabled=true"])
    with pytest.raises(ConfigError, match=r"tracking.ttt': the model \(DeployableStudent\) has no attention"):
        ModelTracker(build_model(cfg), cfg)


def test_track_refuses_bad_ttt_settings_before_tracking(tmp_path, capsys) -> None:
    """One line, exit code 2, no result file: a negative learning rate, a sequence shorter than the pseudo-labels,
    a model with nothing to adapt (each formerly a traceback or a silent no-op, issue 30)."""
    from tracking_helpers import write_dataset

    from spiketrack.cli import main
    from spiketrack.config import dump_config, load_config, to_dict
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    data = write_dataset(tmp_path / "data", [moving_box_sequence("a", frames=6), moving_box_sequence("b", frames=3)])
    cases = [
        ("configs/quickstart_student.yaml", ["tracking.ttt.lr=-0.1"], "tracking.ttt.lr"),
        ("configs/quickstart_student.yaml", ["tracking.ttt.frames=4"], "sequence 'b' has only 2 tracked frames"),
        ("configs/quickstart_student.yaml", ["tracking.ttt.targets=[attn]"], "tracking.ttt.targets"),
        ("configs/quickstart_student_deployable.yaml", ["tracking.ttt.frames=2"], "has no attention or MLP linear"),
    ]
    for i, (config, sets, expected) in enumerate(cases):
        cfg = load_config(config, ["tracking.ttt.enabled=true", *sets])
        dump_config(cfg, tmp_path / f"c{i}.yaml")
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": to_dict(cfg),
                    "model": build_model(cfg).state_dict()}, tmp_path / f"k{i}.pt")
        out = tmp_path / f"res{i}"
        rc = main(["track", "--config", str(tmp_path / f"c{i}.yaml"), "--checkpoint", str(tmp_path / f"k{i}.pt"),
                   "--dataset", str(data), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and expected in err and err.count("\n") == 1, (config, sets, err)
        assert not out.exists() or not list(out.glob("*.txt"))
