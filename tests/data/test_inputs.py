"""Model inputs: student bins and teacher modality dicts from crops of a frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spiketrack.config import load_config
from spiketrack.data.crop import CropWindow
from spiketrack.data.events import EventArray
from spiketrack.data.inputs import InputSpec, batch_inputs, build_input, crop_event_count
from spiketrack.errors import ConfigError


def _events() -> EventArray:
    # 4 events: two at pixel (10, 10) in the first half of (0, 100], ON and OFF; one at (13, 12) late; one far
    return EventArray.from_arrays([10, 20, 90, 95], [10, 10, 13, 200], [10, 10, 12, 5], [1, 0, 1, 1])


def test_spec_from_config():
    from spiketrack.models import input_spec

    assert input_spec(load_config(None, ["model.kind=student", "model.timesteps=3"])) == InputSpec.event_bins(3)
    assert InputSpec.event_bins(3) == InputSpec((), 3, 5) and InputSpec.event_bins(3).channels == {"bins": 2}
    spec = input_spec(load_config(None, ["model.kind=teacher", "model.modalities=rgb+events"]))
    assert spec.views == ("rgb", "events") and spec.needs_rgb and spec.needs_events
    assert spec.channels == {"rgb": 3, "events": 2}
    assert InputSpec.from_modalities("events+voxel", 7).channels == {"events": 2, "voxel": 7}
    with pytest.raises(ConfigError, match="model.modalities"):
        input_spec(load_config(None, ["model.kind=teacher", "model.modalities=events+depth"]))


def test_student_bins_are_crop_of_time_slices():
    window = CropWindow(cx=12.0, cy=12.0, side=8.0)  # covers pixels 8..15; output 8x8 -> one pixel per cell
    x = build_input(InputSpec.event_bins(2), _events(), 0, 100, window, 8)
    assert x.shape == (2, 2, 8, 8)
    assert x.sum() == 3  # the far event is outside the crop
    assert x[0, 1, 2, 2] == 1 and x[0, 0, 2, 2] == 1  # (10, 10) -> cell (2, 2), first half of the window
    assert x[1, 1, 4, 5] == 1  # (13, 12) at t=90 -> second slice, row 4, column 5


def test_teacher_dict_and_batching():
    spec = InputSpec(("events", "voxel", "rgb"), voxel_bins=3)
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[10, 10] = 255
    window = CropWindow(cx=12.0, cy=12.0, side=8.0)
    x = build_input(spec, _events(), 0, 100, window, 8, rgb=rgb)
    assert set(x) == {"events", "voxel", "rgb"}
    assert x["events"].shape == (2, 8, 8) and x["events"].sum() == 3
    assert x["voxel"].shape == (3, 8, 8)
    assert x["rgb"].shape == (3, 8, 8) and x["rgb"][:, 2, 2].tolist() == pytest.approx([1.0, 1.0, 1.0])
    b = batch_inputs([x, x])
    assert b["events"].shape == (2, 2, 8, 8)
    s = batch_inputs([torch.zeros(4, 2, 8, 8)] * 3)
    assert s.shape == (4, 3, 2, 8, 8)
    with pytest.raises(ConfigError, match="rgb"):
        build_input(spec, _events(), 0, 100, window, 8, rgb=None)


def test_crop_event_count():
    window = CropWindow(cx=12.0, cy=12.0, side=8.0)
    assert crop_event_count(_events(), window) == 3
    assert crop_event_count(EventArray.empty(), window) == 0
