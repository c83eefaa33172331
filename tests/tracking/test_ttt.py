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
def test_tuning_changes_only_adapters_and_the_next_sequence_starts_from_the_trained_weights(kind: str) -> None:
    cfg = small_config(kind, **TTT)
    seq = moving_box_sequence(frames=5)
    model = _calibrated(cfg, seq)
    before = _state(model)
    tracker = ModelTracker(model, cfg)
    tracker.initialize(_frame(seq, 0), seq.boxes[0])
    tracker.track(_frame(seq, 1))
    assert not tracker.ttt.tuned and not any(isinstance(m, LoRALinear) for m in model.modules())
    search = tracker._input(_frame(seq, 2), tracker.last_window, cfg.data.search_size)  # frame 2's crop, pre-tuning
    with torch.no_grad():
        untuned = model.track(search, tracker.memory)["score_map"]
    tracker.track(_frame(seq, 2))  # the second pseudo-label: tuning runs now
    assert tracker.ttt.tuned and len(tracker.ttt.losses) == 2
    adapters = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert adapters and any(a.lora_b.weight.abs().sum() > 0 for a in adapters)  # B left zero by SGD
    base = {k.replace(".base.", "."): v for k, v in model.state_dict().items() if ".lora_" not in k}
    assert base.keys() == before.keys() and all(torch.equal(base[k], before[k]) for k in before)
    assert not any(p.requires_grad for a in adapters for p in (a.lora_a.weight, a.lora_b.weight))  # tuned once
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
    # the re-encoded template costs the first encoding's MACs plus those of the adapters' B (dense: A's output)
    lora_b = sum(lay.mac for lay in encode[0].report.layers if ".lora_b" in lay.name)
    assert lora_b > 0 and encode[0].report.total_mac == summary["kinds"]["template_init"]["mac"] + lora_b
    total = summary["total"]
    assert total["energy_mj"] == pytest.approx(sum(k["energy_mj"] for k in summary["kinds"].values()))
    # searches after tuning run through the adapters: their linears are counted too
    later = [r for r in meter.records if r.kind == "search" and r.frame > 2]
    names = {lay.name for r in later for lay in r.report.layers}
    assert later, [(r.kind, r.frame) for r in meter.records]
    assert any(".lora_a" in n for n in names)
    plain = EnergyMeter.from_config(model, small_config("student"))
    with torch.no_grad(), plain.measure("search"):
        pass
    assert "test_time_tuning" not in plain.summary()["kinds"]


def test_bad_settings_are_config_errors() -> None:
    from spiketrack.errors import ConfigError

    cfg = small_config("student", **{**TTT, "ttt.drop_events": 1.0})
    with pytest.raises(ConfigError, match="tracking.ttt"):
        ModelTracker(build_model(cfg), cfg)
