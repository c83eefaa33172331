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


def _sample_batch(b: int = 2, n: int = 3, k: int = 2) -> dict:
    """A collated batch of both layouts: sample i's template filled with i, search frame j of sample i with
    10 i + j (bins: one value per timestep t added as 0.1 t), extra template slot s of sample i with 100 s + i."""
    t_val = torch.arange(b, dtype=torch.float32)
    s_val = 10 * torch.arange(b).view(b, 1) + torch.arange(n).view(1, n)
    steps = 0.1 * torch.arange(2, dtype=torch.float32)
    return {
        "template_bins": (t_val.view(b, 1, 1, 1, 1) + steps.view(1, 2, 1, 1, 1)).expand(b, 2, 2, 4, 4),
        "search_bins": (s_val.view(b, n, 1, 1, 1, 1) + steps.view(1, 1, 2, 1, 1, 1)).expand(b, n, 2, 2, 8, 8),
        "extra_template_bins": (100 * torch.arange(1, k).view(1, k - 1) + torch.arange(b).view(b, 1)).float()
        .view(b, k - 1, 1, 1, 1, 1).expand(b, k - 1, 2, 2, 4, 4),
        "template": {"events": t_val.view(b, 1, 1, 1).expand(b, 2, 4, 4)},
        "search": {"events": s_val.float().view(b, n, 1, 1, 1).expand(b, n, 2, 8, 8)},
    }


def test_the_spec_owns_the_pairs_of_a_batch():
    b, n = 2, 3
    batch = _sample_batch(b, n)
    bins, views = InputSpec.event_bins(2), InputSpec(("events",))
    template, search = bins.pairs(batch, n)
    assert template.shape == (2, b * n, 2, 4, 4) and search.shape == (2, b * n, 2, 8, 8)
    # rows ordered (sample, search frame): the template of sample i repeated n times, timesteps first
    assert template[0, :, 0, 0, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert template[1, :, 0, 0, 0].tolist() == pytest.approx([0.1, 0.1, 0.1, 1.1, 1.1, 1.1])
    assert search[0, :, 0, 0, 0].tolist() == [0, 1, 2, 10, 11, 12]
    assert search[1, :, 0, 0, 0].tolist() == pytest.approx([0.1, 1.1, 2.1, 10.1, 11.1, 12.1])
    v_template, v_search = views.pairs(batch, n)
    assert v_template["events"].shape == (b * n, 2, 4, 4) and v_search["events"].shape == (b * n, 2, 8, 8)
    assert v_template["events"][:, 0, 0, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert v_search["events"][:, 0, 0, 0].tolist() == [0, 1, 2, 10, 11, 12]
    # extra template slots: only event bins carry them, each repeated like the template
    (slot,) = bins.extra_templates(batch, n)
    assert slot.shape == (2, b * n, 2, 4, 4) and slot[0, :, 0, 0, 0].tolist() == [100, 100, 100, 101, 101, 101]
    assert views.extra_templates(batch, n) == [] and bins.extra_templates({"template_bins": 0}, n) == []


def test_the_spec_owns_batching_and_sample_entries():
    bins, views = InputSpec.event_bins(2, 3), InputSpec(("events", "rgb"))
    assert (bins.batch_dim, views.batch_dim) == (1, 0)
    x = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 2, 4, 4)  # [T, 2, S, S]
    batched = bins.batch([x, x + 10])
    assert batched.shape == (2, 2, 2, 4, 4) and batched[0, :, 0, 0, 0].tolist() == [0, 10]
    assert bins.cat([batched, batched]).shape == (2, 4, 2, 4, 4)
    v = {"events": torch.zeros(2, 4, 4), "rgb": torch.ones(3, 4, 4)}
    vb = views.batch([v, v, v])
    assert vb["rgb"].shape == (3, 3, 4, 4) and views.cat([vb, vb])["events"].shape == (6, 2, 4, 4)
    # the union of a teacher's views and a student's bins: one crop, both entries of a sample
    both = InputSpec.union([views, bins])
    assert (both.views, both.timesteps, both.template_bins) == (("events", "rgb"), 2, 3)
    built_t = {"events": torch.zeros(2, 4, 4), "rgb": torch.zeros(3, 4, 4), "bins": torch.zeros(3, 2, 4, 4)}
    built_s = {"events": torch.zeros(2, 8, 8), "rgb": torch.zeros(3, 8, 8), "bins": torch.zeros(2, 2, 8, 8)}
    entries = both.sample_entries(built_t, [built_s] * 3)
    assert entries["template_bins"].shape == (3, 2, 4, 4) and entries["search_bins"].shape == (3, 2, 2, 8, 8)
    assert entries["search"]["rgb"].shape == (3, 3, 8, 8) and set(entries["template"]) == {"events", "rgb"}
    assert set(bins.sample_entries(built_t, [built_s])) == {"template_bins", "search_bins"}
    assert set(views.sample_entries(built_t, [built_s])) == {"template", "search"}
    assert bins.build_kwargs(template=True)["timesteps"] == 3 and bins.build_kwargs()["timesteps"] == 2
    assert bins.select(built_t) is built_t["bins"] and set(views.select(built_t)) == {"events", "rgb"}
    with pytest.raises(ConfigError, match="one set of views, one of event bins"):
        InputSpec.union([bins, InputSpec.event_bins(4)])
