"""The tracker with the real teacher and student (random weights): shapes, decoding agreement, energy hook."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tracking_helpers import moving_box_sequence, small_config, write_dataset

from spiketrack.data.crop import CropWindow
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
            out = model.track(search, tracker.memory) if kind == "student" else model(tracker.template, search)
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


def test_energy_files_count_every_call(tmp_path):
    torch.manual_seed(0)
    cfg = small_config("student")
    root = write_dataset(tmp_path / "d", [moving_box_sequence("s", frames=3)])
    out = tmp_path / "o"
    summary = track_dataset(cfg, build_model(cfg), root, "test", out, energy=True, progress=False)
    assert summary.tracked == ["s"]
    data = json.loads((out / "s_energy.json").read_text())
    assert data["frames"] == 3 and data["timesteps"] == 2
    assert data["kinds"]["template_init"]["calls"] == 1 and data["kinds"]["search"]["calls"] == 2
    assert data["kinds"]["search"]["mac"] > 0 and data["kinds"]["search"]["sop"] > 0
    total = data["total"]
    assert total["energy_mj"] == pytest.approx(sum(k["energy_mj"] for k in data["kinds"].values()))
    assert data["energy_mj_per_frame"] == pytest.approx(total["energy_mj"] / 3)
    # energy asked again on a finished run: nothing to redo
    assert track_dataset(cfg, build_model(cfg), root, "test", out, energy=True, progress=False).tracked == []
