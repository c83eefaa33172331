"""Adaptive search region counter on hand-made IoU sequences (HDETrack V2 rule)."""

from __future__ import annotations

from spiketrack.tracking.asr import AdaptiveSearchRegion


def _scales(asr: AdaptiveSearchRegion, ious: list[float]) -> list[float]:
    """Scale used for the frame after each IoU (consumed as a tracker would)."""
    out = []
    for v in ious:
        asr.update(v)
        out.append(asr.scale)
        asr.consume()
    return out


def test_triggers_after_m_low_iou_frames_then_resets():
    asr = AdaptiveSearchRegion(tau=0.5, m=7, theta=1.5)
    scales = _scales(asr, [0.4] * 7 + [0.4] * 6)
    assert scales == [1.0] * 6 + [1.5] + [1.0] * 6
    assert asr.count == 6


def test_high_iou_decrements_with_floor_zero():
    asr = AdaptiveSearchRegion(tau=0.5, m=7, theta=1.5)
    _scales(asr, [0.9, 0.9, 0.4])
    assert asr.count == 1
    # 6 up, 1 down, 2 up -> reaches 7 on the 9th frame
    asr.reset()
    assert _scales(asr, [0.4] * 6 + [0.6] + [0.4] * 2) == [1.0] * 8 + [1.5]


def test_alternating_iou_never_triggers():
    asr = AdaptiveSearchRegion(tau=0.5, m=3, theta=2.0)
    assert _scales(asr, [0.1, 0.9] * 20) == [1.0] * 40
    assert asr.count <= 1


def test_iou_equal_to_tau_counts_as_stable():
    asr = AdaptiveSearchRegion(tau=0.5, m=2, theta=2.0)
    assert _scales(asr, [0.5, 0.5, 0.5]) == [1.0] * 3 and asr.count == 0


def test_pending_scale_survives_until_consumed():
    asr = AdaptiveSearchRegion(tau=0.5, m=2, theta=1.5)
    asr.update(0.0)
    asr.update(0.0)
    assert asr.scale == 1.5 and asr.scale == 1.5  # reading does not consume (empty frames skip the search)
    asr.consume()
    assert asr.scale == 1.0


def test_disabled_is_inert():
    asr = AdaptiveSearchRegion(tau=0.5, m=1, theta=3.0, enabled=False)
    assert _scales(asr, [0.0] * 5) == [1.0] * 5 and asr.count == 0
