import math

import numpy as np
import pytest
import torch

from spiketrack.data.crop import CropWindow, crop_events, crop_image, image_to_tensor
from spiketrack.data.events import EventArray


def test_window_around_box_follows_ostrack() -> None:
    w = CropWindow.around((10, 20, 4, 9), factor=2.0)
    assert (w.cx, w.cy) == (12.0, 24.5) and w.side == pytest.approx(2 * 6.0)
    assert w.x0 == pytest.approx(6.0) and w.y0 == pytest.approx(18.5)


def test_box_mapping_roundtrip_and_centre() -> None:
    w = CropWindow.around((10, 20, 4, 9), factor=4.0)
    norm = w.box_to_crop(np.array([10, 20, 4, 9]))
    assert norm[:2] == pytest.approx([0.5, 0.5])
    assert norm[2:] == pytest.approx([4 / 24, 9 / 24])
    other = np.array([[3.0, 7.0, 5.0, 2.0], [30.0, 1.0, 8.0, 8.0]])
    np.testing.assert_allclose(w.crop_to_box(w.box_to_crop(other)), other, atol=1e-9)


def test_crop_events_maps_pixels_to_cells() -> None:
    win = CropWindow(cx=10.0, cy=10.0, side=8.0)  # covers pixels 6..13 in x and y
    ev = EventArray.from_arrays([1, 2, 3, 4], [6, 13, 5, 10], [6, 13, 10, 14], [1, 0, 1, 1])
    out = crop_events(ev, win, out_size=4)  # 2 pixels per cell
    assert out.t.tolist() == [1, 2]
    assert (out.x.tolist(), out.y.tolist()) == ([0, 3], [0, 3])
    flipped = crop_events(ev, win, out_size=4, flip=True)
    assert flipped.x.tolist() == [3, 0]


def test_crop_image_centres_and_pads_with_zeros() -> None:
    img = torch.zeros(1, 20, 20)
    img[0, 8:12, 8:12] = 1.0
    win = CropWindow(cx=10.0, cy=10.0, side=8.0)
    out = crop_image(img, win, out_size=8)
    assert out.shape == (1, 8, 8)
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = 1.0  # the window covers pixels 6..13, so the square 8..11 lands on cells 2..5
    torch.testing.assert_close(out[0], expected)
    # shrinking by 2 averages 2x2 pixel blocks exactly
    half = crop_image(img, CropWindow(cx=10.0, cy=10.0, side=16.0), out_size=8)
    assert half[0, 3:5, 3:5].tolist() == [[1.0, 1.0], [1.0, 1.0]] and half.sum() == pytest.approx(4.0)
    # a window half outside the image is zero there
    edge = crop_image(torch.ones(1, 10, 10), CropWindow(cx=0.0, cy=5.0, side=10.0), out_size=10)
    assert edge[0, :, :5].abs().max() == 0 and edge[0, :, 5:].min() == pytest.approx(1.0)


def test_jitter_statistics() -> None:
    rng = np.random.default_rng(0)
    base = CropWindow.around((100, 100, 20, 20), factor=4.0)
    ws = [base.jittered(rng, center_jitter=3.0, scale_jitter=0.25, factor=4.0) for _ in range(2000)]
    log_scale = np.log([w.side / base.side for w in ws])
    assert abs(log_scale.mean()) < 0.03 and log_scale.std() == pytest.approx(0.25, rel=0.1)
    shifts = np.array([(w.cx - base.cx) / (w.side / 4) for w in ws])
    assert np.abs(shifts).max() <= 1.5 + 1e-9  # U(-0.5, 0.5) * 3 box sizes


def test_image_to_tensor() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    img[1, 2] = [255, 0, 51]
    t = image_to_tensor(img)
    assert t.shape == (3, 2, 3) and t[0, 1, 2] == 1.0 and t[2, 1, 2] == pytest.approx(0.2)
    assert math.isclose(float(t.sum()), 1.2, rel_tol=1e-6)
