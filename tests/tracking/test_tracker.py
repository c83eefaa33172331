"""ModelTracker end to end with oracle models: cropping, decoding and coordinate mapping; updates; empty frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tracking_helpers import OracleStudent, OracleTeacher, iou, moving_box_sequence, small_config

from spiketrack.data.crop import CropWindow
from spiketrack.data.events import EventArray
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.runner import track_sequence
from spiketrack.tracking.tracker import ModelTracker


@pytest.mark.parametrize("kind,model", [("student", OracleStudent), ("teacher", OracleTeacher)])
def test_oracle_tracks_constant_velocity_target(kind, model):
    seq = moving_box_sequence(frames=20)
    tracker = ModelTracker(model(), small_config(kind))
    result = track_sequence(seq, tracker)
    overlap = iou(result.boxes, seq.boxes.astype(np.float64))
    assert overlap.min() > 0.9, overlap
    assert np.allclose(result.boxes[0], seq.boxes[0])
    assert np.all(result.scores[1:] > 0.9)  # the oracle's peak (0.95) is reported unwindowed
    assert set(result.stages) >= {"data", "representation", "model", "postprocess"}
    assert all(v > 0 for v in result.stages.values())


def test_student_template_branch_runs_once_without_update():
    seq = moving_box_sequence(frames=8)
    oracle = OracleStudent()
    track_sequence(seq, ModelTracker(oracle, small_config("student", template_update=False)))
    assert oracle.encoded == 1 and oracle.searched == 7 and oracle.merged == []


def test_template_update_keeps_first_slot_and_caps_slots():
    seq = moving_box_sequence(frames=11)
    oracle = OracleStudent()
    cfg = small_config("student", template_update=True, update_interval=2, update_threshold=0.5, max_templates=3)
    tracker = ModelTracker(oracle, cfg)
    track_sequence(seq, tracker)
    # updates after tracked frames 2, 4, 6, 8, 10 (score 0.95 > 0.5): 1 + 5 encodings, 5 merges
    assert oracle.encoded == 6 and len(oracle.merged) == 5
    assert [m["id"] for m in tracker.slots] == [1, 5, 6]  # first kept, oldest added slot replaced
    assert [[m["id"] for m in call] for call in oracle.merged] == [[1, 2], [1, 2, 3], [1, 3, 4], [1, 4, 5], [1, 5, 6]]
    assert tracker.memory == {"merged": tracker.slots}


def test_template_update_needs_score_above_threshold():
    oracle = OracleStudent()
    cfg = small_config("student", template_update=True, update_interval=1, update_threshold=0.96)
    track_sequence(moving_box_sequence(frames=6), ModelTracker(oracle, cfg))
    assert oracle.encoded == 1  # 0.95 never exceeds 0.96


def test_empty_event_windows_keep_box_and_decay_score():
    seq = moving_box_sequence(frames=14, velocity=(1, 1), empty={5, 6, 7})
    tracker = ModelTracker(OracleStudent(), small_config("student", empty_score_decay=0.5))
    result = track_sequence(seq, tracker)
    for k in (5, 6, 7):
        assert np.array_equal(result.boxes[k], result.boxes[4])
    assert result.scores[5:8] == pytest.approx(result.scores[4] * np.array([0.5, 0.25, 0.125]))
    visible = [k for k in range(14) if k not in (5, 6, 7)]
    assert iou(result.boxes[visible], seq.boxes[visible].astype(np.float64)).min() > 0.85


def test_sequence_without_any_events_completes():
    seq = moving_box_sequence(frames=5, empty=set(range(5)))
    result = track_sequence(seq, ModelTracker(OracleTeacher(), small_config("teacher")))
    assert np.all(result.boxes == result.boxes[0])
    assert result.scores[1:] == pytest.approx([0.5, 0.25, 0.125, 0.0625])


def test_adaptive_search_region_enlarges_one_crop_after_m_jumps():
    # target alternates between two places 12 px apart: consecutive IoU 0.25 < tau on every frame
    positions = [(60, 50) if k % 2 == 0 else (72, 50) for k in range(8)]
    seq = moving_box_sequence(frames=8, positions=positions)
    cfg = small_config("student", asr=True, asr_m=3, asr_theta=1.5, asr_tau=0.5)
    tracker = ModelTracker(OracleStudent(), cfg)
    frame = lambda k: TrackingFrame(k, seq.frame_events(k), *seq.frame_window(k), seq.width, seq.height)  # noqa: E731
    tracker.initialize(frame(0), seq.boxes[0])
    factors = []
    for k in range(1, 8):
        prev = tracker.box.copy()
        tracker.track(frame(k))
        factors.append(tracker.last_window.side / CropWindow.around(prev, 1.0).side)
    # frames 1-3 raise the count to 3 = m, frame 4 searches with 4 * 1.5, then the count restarts
    assert factors == pytest.approx([4, 4, 4, 6, 4, 4, 6])


def test_asr_disabled_never_enlarges():
    positions = [(60, 50) if k % 2 == 0 else (72, 50) for k in range(8)]
    seq = moving_box_sequence(frames=8, positions=positions)
    tracker = ModelTracker(OracleStudent(), small_config("student", asr=False, asr_m=1))
    frame = lambda k: TrackingFrame(k, seq.frame_events(k), *seq.frame_window(k), seq.width, seq.height)  # noqa: E731
    tracker.initialize(frame(0), seq.boxes[0])
    for k in range(1, 8):
        prev = tracker.box.copy()
        tracker.track(frame(k))
        assert tracker.last_window.side == pytest.approx(CropWindow.around(prev, 4.0).side)


class RecordingMeter:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def measure(self, kind):
        from contextlib import nullcontext

        self.kinds.append(kind)
        return nullcontext()


def test_meter_sees_every_model_call():
    meter = RecordingMeter()
    cfg = small_config("student", template_update=True, update_interval=3, update_threshold=0.5)
    track_sequence(moving_box_sequence(frames=7), ModelTracker(OracleStudent(), cfg, meter=meter))
    # template_update appears twice per update: encoding the new slot, then merging the slots
    assert meter.kinds == ["template_init"] + ["search"] * 3 + ["template_update"] * 2 + ["search"] * 3 + [
        "template_update"
    ] * 2


def test_initialize_rejects_empty_box():
    tracker = ModelTracker(OracleStudent(), small_config("student"))
    frame = TrackingFrame(0, EventArray.empty(), 0, 10, 50, 50)
    with pytest.raises(ValueError, match="positive width"):
        tracker.initialize(frame, [1, 1, 0, 5])


class GrowingStudent(OracleStudent):
    """Finds the target like the oracle but always reports a box 0.9 x 0.9 of the search crop."""

    def track(self, search_bins, memory, return_features=False):
        out = super().track(search_bins, memory, return_features)
        out["size_map"] = torch.full_like(out["size_map"], 0.9)
        return out


@pytest.mark.parametrize("limit", [0.0, 3.0])
def test_max_scale_change_bounds_a_run_away_box(limit):
    seq = moving_box_sequence(frames=6, velocity=(0, 0), start=(60, 50), width=400, height=400)
    tracker = ModelTracker(GrowingStudent(), small_config(max_scale_change=limit, hann_window=False))
    result = track_sequence(seq, tracker)
    w, h = result.boxes[1:, 2], result.boxes[1:, 3]
    if limit == 0:  # 0.9 x a crop of 4 x sqrt(20 * 16) = 64.4 px on the first frame, then growing
        assert w[0] == pytest.approx(0.9 * 4 * np.sqrt(20 * 16), rel=1e-6) and w[1] > w[0]
    else:  # clamped to 3 x the first box (20 x 16), centre kept on the target
        assert np.allclose(w, 60.0) and np.allclose(h, 48.0)
        cx = result.boxes[1:, 0] + w / 2
        assert np.allclose(cx, 70.0, atol=1.0)


def test_size_update_rate_moves_half_way():
    seq = moving_box_sequence(frames=2, velocity=(0, 0), start=(60, 50), width=400, height=400)
    tracker = ModelTracker(GrowingStudent(), small_config(size_update_rate=0.5, hann_window=False))
    result = track_sequence(seq, tracker)
    predicted = 0.9 * 4 * np.sqrt(20 * 16)
    assert result.boxes[1, 2] == pytest.approx(0.5 * 20 + 0.5 * predicted, rel=1e-6)
    assert result.boxes[1, 3] == pytest.approx(0.5 * 16 + 0.5 * predicted, rel=1e-6)


class DoubtfulStudent(OracleStudent):
    """Finds the target like the oracle but reports score 0.2 on the frames in ``doubtful`` (by call count)."""

    def __init__(self, doubtful: set[int]) -> None:
        super().__init__()
        self.doubtful = doubtful

    def track(self, search_bins, memory, return_features=False):
        out = super().track(search_bins, memory, return_features)
        if self.searched in self.doubtful:
            out["score_map"] = out["score_map"] * (0.2 / 0.95)
        return out


def test_lost_target_keeps_last_box_and_grows_the_search_crop():
    seq = moving_box_sequence(frames=7, velocity=(2, 0), start=(60, 50), width=400, height=400)
    cfg = small_config("student", lost_threshold=0.3, lost_search_growth=1.25, lost_search_max=1.5, asr=False)
    tracker = ModelTracker(DoubtfulStudent({2, 3, 4}), cfg)
    frame = lambda k: TrackingFrame(k, seq.frame_events(k), *seq.frame_window(k), seq.width, seq.height)  # noqa: E731
    tracker.initialize(frame(0), seq.boxes[0])
    boxes, factors = [], []
    for k in range(1, 7):
        prev = tracker.box.copy()
        box, _ = tracker.track(frame(k))
        boxes.append(box)
        factors.append(tracker.last_window.side / CropWindow.around(prev, 1.0).side)
    # frames 2-4 score 0.2 < 0.3: the box of frame 1 is kept and the crop grows 4 -> 5 -> 6 (capped at 1.5 x 4)
    for k in (1, 2, 3):
        assert np.array_equal(boxes[k], boxes[0])
    assert factors == pytest.approx([4, 4, 5, 6, 6, 4])
    assert iou(np.stack(boxes[4:]), seq.boxes[5:].astype(np.float64)).min() > 0.85  # found again, normal crop


def test_lost_threshold_zero_adopts_every_prediction():
    seq = moving_box_sequence(frames=5, velocity=(2, 0), start=(60, 50), width=400, height=400)
    tracker = ModelTracker(DoubtfulStudent({2, 3}), small_config("student", asr=False))
    result = track_sequence(seq, tracker)
    assert iou(result.boxes, seq.boxes.astype(np.float64)).min() > 0.85
    assert not np.array_equal(result.boxes[2], result.boxes[1])
