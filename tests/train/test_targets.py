"""CenterNet/OSTrack heatmap targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spiketrack.train.targets import gaussian_heatmap, gaussian_radius, heatmap_targets


def test_gaussian_radius_hand_computed() -> None:
    # 10x10 box at overlap 0.7: the third case binds, r3 = (-2*0.7*20 + sqrt((0.7*40)^2 + 4*2.8*30)) / 2
    r3 = (-28 + math.sqrt(28**2 + 4 * 2.8 * 30)) / 2
    assert gaussian_radius(10, 10) == pytest.approx(r3)
    assert r3 == pytest.approx(2.7332, abs=1e-4)


def test_heatmap_peak_and_shape() -> None:
    # box centre (0.55, 0.30) on a 16 grid -> cell (x=8, y=4); size 0.625 -> 10 cells -> radius 2
    heat = gaussian_heatmap(np.array([0.55, 0.30, 0.625, 0.625]), 16)
    assert heat.shape == (16, 16)
    assert heat[4, 8] == 1.0
    assert np.count_nonzero(heat == 1.0) == 1
    sigma = (2 * 2 + 1) / 6
    assert heat[4, 9] == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert heat[4, 11] == 0.0  # outside the radius
    assert heat[4, 7] == heat[4, 9] == heat[3, 8]


def test_heatmap_targets_batch_and_clipping() -> None:
    t = heatmap_targets(np.array([[0.5, 0.5, 0.2, 0.2], [1.2, -0.1, 0.1, 0.1]]), 8)
    assert t.shape == (2, 1, 8, 8)
    assert t[1, 0, 0, 7] == 1.0  # centre outside the crop is clipped to the border cell
