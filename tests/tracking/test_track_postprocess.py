"""Hann window, decoding, crop -> image mapping, clipping and IoU on hand-made values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spiketrack.data.crop import CropWindow
from spiketrack.tracking.postprocess import box_iou, clip_box, decode, hann1d, hann2d, to_image_box


def test_hann1d_known_values():
    # 0.5 (1 - cos(2 pi i / (n + 1))), i = 1..n
    assert hann1d(1).tolist() == pytest.approx([1.0])
    assert hann1d(3).tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert hann1d(5).tolist() == pytest.approx([0.25, 0.75, 1.0, 0.75, 0.25])


def test_hann2d_is_outer_product():
    w = hann2d(3, 5)
    assert w.shape == (3, 5)
    assert w[1, 2] == pytest.approx(1.0)
    assert w[0, 0] == pytest.approx(0.5 * 0.25)
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.flip(1))


def _maps(score: torch.Tensor) -> dict[str, torch.Tensor]:
    hf, wf = score.shape
    size = torch.zeros(1, 2, hf, wf)
    size[0, 0], size[0, 1] = 0.1, 0.2
    offset = torch.full((1, 2, hf, wf), 0.5)
    return {"score_map": score.view(1, 1, hf, wf), "size_map": size, "offset_map": offset}


def test_hann_window_prefers_centre_peak_over_stronger_border_peak():
    score = torch.full((5, 5), 0.01)
    score[0, 0] = 0.9  # border: 0.9 * 0.0625 after the window
    score[2, 3] = 0.6  # near centre: 0.6 * 0.75
    boxes, scores = decode(_maps(score), None)
    assert boxes[0].tolist() == pytest.approx([0.5 / 5, 0.5 / 5, 0.1, 0.2])
    assert scores.tolist() == pytest.approx([0.9])
    boxes, scores = decode(_maps(score), hann2d(5, 5))
    assert boxes[0].tolist() == pytest.approx([3.5 / 5, 2.5 / 5, 0.1, 0.2])
    assert scores.tolist() == pytest.approx([0.6])  # raw score at the chosen cell, not the windowed one


def test_decode_reads_size_and_offset_at_argmax():
    score = torch.zeros(1, 1, 8, 8)
    score[0, 0, 2, 5] = 0.8
    size = torch.zeros(1, 2, 8, 8)
    size[0, :, 2, 5] = torch.tensor([0.25, 0.125])
    offset = torch.zeros(1, 2, 8, 8)
    offset[0, :, 2, 5] = torch.tensor([0.25, 0.75])
    boxes, scores = decode({"score_map": score, "size_map": size, "offset_map": offset})
    assert boxes[0].tolist() == pytest.approx([5.25 / 8, 2.75 / 8, 0.25, 0.125])
    assert scores.item() == pytest.approx(0.8)


def test_to_image_box_inverts_box_to_crop():
    crop = CropWindow.around([40, 30, 20, 10], 4.0)
    box = np.array([47.0, 28.0, 12.0, 9.0])
    assert to_image_box(torch.tensor(crop.box_to_crop(box)), crop) == pytest.approx(box)
    # centre of the crop, a quarter of its side -> box centred on the crop centre
    side = crop.side
    assert to_image_box(np.array([0.5, 0.5, 0.25, 0.25]), crop) == pytest.approx(
        [50 - side / 8, 35 - side / 8, side / 4, side / 4]
    )


def test_clip_box_with_and_without_margin():
    assert clip_box(np.array([-5.0, 10, 20, 20]), 100, 80).tolist() == pytest.approx([0, 10, 15, 20])
    assert clip_box(np.array([90.0, 70, 20, 20]), 100, 80).tolist() == pytest.approx([90, 70, 10, 10])
    assert clip_box(np.array([-5.0, 70, 20, 20]), 100, 80, margin=3).tolist() == pytest.approx([-3, 70, 18, 13])
    assert clip_box(np.array([10.0, 10, 20, 20]), 100, 80).tolist() == pytest.approx([10, 10, 20, 20])


def test_clip_box_outside_image_keeps_min_size_at_border():
    assert clip_box(np.array([150.0, 20, 10, 10]), 100, 80).tolist() == pytest.approx([99, 20, 1, 10])
    assert clip_box(np.array([-40.0, -30, 10, 10]), 100, 80).tolist() == pytest.approx([0, 0, 1, 1])
    with pytest.raises(ValueError):
        clip_box(np.array([np.nan, 0, 1, 1]), 10, 10)


def test_box_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
