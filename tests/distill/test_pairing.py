"""Student <-> teacher layer pairing."""

from __future__ import annotations

import pytest

from spiketrack.distill.pairing import relative_depth_layer, teacher_layers
from spiketrack.errors import ConfigError


def test_relative_depth_pairs() -> None:
    # 4 student blocks, 12 teacher layers: round((i + 1) * 3) - 1
    assert [relative_depth_layer(i, 4, 12) for i in range(4)] == [2, 5, 8, 11]
    # 3 of 4: (i + 1) * 4 / 3 = 1.33, 2.67, 4 -> 1, 3, 4 -> layers 0, 2, 3
    assert teacher_layers([0, 1, 2], 3, 4, "relative_depth") == [0, 2, 3]
    # halves round up: 4 of 2 -> (i + 1) * 0.5 = 0.5, 1, 1.5, 2 -> 1, 1, 2, 2 -> 0, 0, 1, 1
    assert teacher_layers([0, 1, 2, 3], 4, 2, "relative_depth") == [0, 0, 1, 1]
    assert teacher_layers([-1, -2], 4, 12, "relative_depth") == [11, 8]
    assert teacher_layers([0, -1], 4, 12, "index") == [0, -1]
    with pytest.raises(ConfigError, match="out of range"):
        teacher_layers([4], 4, 12, "relative_depth")
    with pytest.raises(ConfigError, match="layer_pairing"):
        teacher_layers([0], 4, 12, "depth")
