"""The tracker with the real teacher and student (random weights): shapes, decoding agreement, energy hook."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tracking_helpers import moving_box_sequence, small_config, write_dataset

from spiketrack.data.crop import CropWindow
from spiketrack.energy.meter import EnergyMeter
from spiketrack.models import build_model
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.runner import track_dataset, track_sequence
from spiketrack.tracking.tracker import ModelTracker


def _frame(seq, k):
    return TrackingFrame(k, seq.frame_events(k), *seq.frame_window(k), seq.width, seq.height)


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_real_model_tracks_without_window_like_its_own_head(kind):
    torch.manual_seed(0)
    cfg = small_config(kind, hann_window=False, asr=False, margin=1000.0)  # no clipping in effect
    model = build_model(cfg)
    seq = moving_box_sequence(frames=4)
    tracker = ModelTracker(model, cfg)
    tracker.initialize(_frame(seq, 0), seq.boxes[0])
    for k in (1, 2, 3):
        prev = tracker.box.copy()
        box, score = tracker.track(_frame(seq, k))
        # the same search input through the model directly: its pred_boxes mapped by the crop window
        window = CropWindow.around(prev, cfg.data.search_factor)
        search = tracker._input(_frame(seq, k), window, cfg.data.search_size)
        with torch.no_grad():
            out = model.track(search, tracker.memory)  # one call protocol: the cached template state
        expected = window.crop_to_box(out["pred_boxes"][0].double().numpy())
        assert box == pytest.approx(expected, abs=1e-3)
        assert score == pytest.approx(float(out["score_map"].max()), abs=1e-6)


def test_real_student_with_template_update_and_clipping():
    torch.manual_seed(0)
    cfg = small_config("student", template_update=True, update_interval=2, update_threshold=0.0, max_templates=3)
    seq = moving_box_sequence(frames=7)
    tracker = ModelTracker(build_model(cfg), cfg)
    result = track_sequence(seq, tracker)
    assert len(tracker.slots) == 3 and tracker.memory.num_slots == 3
    b = result.boxes
    assert np.all(np.isfinite(b)) and np.all(b[:, 2:] >= 1)
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 0] + b[:, 2] <= seq.width + 1e-6)
    assert np.all(b[:, 1] >= 0) and np.all(b[:, 1] + b[:, 3] <= seq.height + 1e-6)


def test_stacked_template_student_updates_its_stack_while_tracking():
    """model.template_steps: templates: the first template fills the stack, each update joins it (SpikeTrack)."""
    from spiketrack.config import load_config

    torch.manual_seed(0)
    cfg = load_config(None, ["model.kind=student", "model.variant=quickstart", "data.template_size=64",
                             "data.search_size=128", "model.timesteps=1", "model.template_timesteps=3",
                             "model.template_steps=templates", "tracking.template_update=true",
                             "tracking.update_interval=2", "tracking.update_threshold=0.0", "tracking.max_templates=3"])
    seq = moving_box_sequence(frames=7)
    tracker = ModelTracker(build_model(cfg), cfg)
    track_sequence(seq, tracker)
    stack = tracker.memory.inputs
    assert len(tracker.slots) == 3 and stack.shape[0] == 3 and tracker.memory.slots[0].shape[0] == 3
    assert torch.equal(stack[0], tracker.slots[0].inputs[0])  # the first template stays at step 0
    assert torch.equal(stack[1], tracker.slots[1].inputs[0]) and torch.equal(stack[2], tracker.slots[2].inputs[0])


def test_energy_files_count_every_call(tmp_path):
    torch.manual_seed(0)
    cfg = small_config("student")
    root = write_dataset(tmp_path / "d", [moving_box_sequence("s", frames=3)])
    out, meter = tmp_path / "o", EnergyMeter.from_config
    summary = track_dataset(cfg, build_model(cfg), root, "test", out, meter=meter, progress=False)
    assert summary.tracked == ["s"]
    data = json.loads((out / "s_energy.json").read_text())
    assert data["frames"] == 3 and data["timesteps"] == 2
    assert data["kinds"]["template_init"]["calls"] == 1 and data["kinds"]["search"]["calls"] == 2
    search = data["kinds"]["search"]
    assert search["mac"] > 0 and search["neuron_updates"] > 0  # (random weights may not spike at all)
    assert search["mac"] > 2 * data["kinds"]["template_init"]["mac"]  # search crop has 4x the pixels
    total = data["total"]
    assert total["energy_mj"] == pytest.approx(sum(k["energy_mj"] for k in data["kinds"].values()))
    assert data["energy_mj_per_frame"] == pytest.approx(total["energy_mj"] / 3)
    assert [f["kinds"] for f in data["per_frame"]] == [["template_init"], ["search"], ["search"]]
    # energy asked again on a finished run: nothing to redo
    assert track_dataset(cfg, build_model(cfg), root, "test", out, meter=meter, progress=False).tracked == []


def test_energy_memory_in_the_config_adds_the_memory_aware_fields(tmp_path):
    """energy.memory: true -> every energy file of the run holds compute-only and memory-aware energy; the
    compute-only fields are those of a run without it."""
    cfg = small_config("student")
    root = write_dataset(tmp_path / "d", [moving_box_sequence("s", frames=3)])

    def run(memory: bool) -> dict:
        torch.manual_seed(0)
        cfg.energy.memory = memory
        out = tmp_path / f"o{int(memory)}"
        track_dataset(cfg, build_model(cfg), root, "test", out, meter=EnergyMeter.from_config, progress=False)
        return json.loads((out / "s_energy.json").read_text())

    plain, with_memory = run(False), run(True)
    assert "energy_mj_memory_sequence" not in plain and with_memory["energy_mj_memory_sequence"] > 0
    assert with_memory["total"] == plain["total"]
    assert with_memory["energy_mj_with_memory_sequence"] == pytest.approx(
        plain["energy_mj_sequence"] + with_memory["energy_mj_memory_sequence"])


def test_rgb_teacher_reads_intensity_frames(tmp_path):
    torch.manual_seed(0)
    cfg = small_config("teacher")
    cfg.model.modalities = "rgb+events"
    seq = moving_box_sequence(frames=3)
    seq._rgb = np.random.default_rng(0).integers(0, 255, (3, seq.height, seq.width, 3), dtype=np.uint8)
    tracker = ModelTracker(build_model(cfg), cfg)
    result = track_sequence(seq, tracker, needs_rgb=True)
    assert set(tracker.memory) == {"rgb", "events"} and tracker.memory["rgb"].shape == (1, 3, 64, 64)
    assert np.all(np.isfinite(result.boxes))
    seq._rgb = None
    from spiketrack.errors import ConfigError

    with pytest.raises(ConfigError, match="intensity frames"):
        track_sequence(seq, ModelTracker(build_model(cfg), cfg), needs_rgb=True)


def test_cli_tracks_from_a_checkpoint(tmp_path, capsys):
    from spiketrack.cli import main
    from spiketrack.config import dump_config, to_dict
    from spiketrack.evaluation.textfiles import read_boxes
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from spiketrack.train.checkpoint import atomic_save

    torch.manual_seed(0)
    cfg = small_config("student")
    model = build_model(cfg)
    ckpt = atomic_save(
        {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": "student", "config": to_dict(cfg),
         "model": model.state_dict()},
        tmp_path / "student.pt",
    )
    config = tmp_path / "cfg.yaml"
    dump_config(cfg, config)
    seq = moving_box_sequence("s", frames=4)
    root = write_dataset(tmp_path / "d", [seq])
    args = ["track", "--config", str(config), "--checkpoint", str(ckpt), "--dataset", str(root), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    assert "frames/s" in capsys.readouterr().out
    boxes = read_boxes(tmp_path / "o" / "s.txt")
    # same weights in-process give the same boxes (result files hold 2 decimals)
    direct = track_sequence(seq, ModelTracker(model, cfg)).boxes
    assert boxes == pytest.approx(direct, abs=0.006)
    # a checkpoint of another architecture is a reported error, not a traceback
    rc = main([*args, "--out", str(tmp_path / "o2"), "--set", "model.kind=teacher"])
    assert rc == 2 and "student.pt" in capsys.readouterr().err
    # weights that fit but were trained as another neuron: refused, naming the key, before anything is tracked
    rc = main([*args, "--out", str(tmp_path / "o3"), "--set", "model.neuron.tau=3.0"])
    err = capsys.readouterr().err
    assert rc == 2 and "student.pt" in err and "model.neuron.tau: config 3.0, checkpoint 2.0" in err
    assert not (tmp_path / "o3" / "s.txt").exists()
    # settings that do not change the forward pass are free to differ
    assert main([*args, "--out", str(tmp_path / "o4"), "--set", "model.neuron.backend=torch"]) == 0
