"""Template inputs of training samples: the template's own T_t (model.template_timesteps) and extra templates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate
from trainsynth import tiny_config

from spiketrack.data.inputs import InputSpec
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.train.sampling import PairDataset
from spiketrack.train.trainer import run_model


def test_template_bins_use_the_template_T(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset)
    views = InputSpec.from_modalities("events")
    same = PairDataset(cfg, inputs=[views, InputSpec.event_bins(2)])[3]
    asym = PairDataset(cfg, inputs=[views, InputSpec.event_bins(1, 4)])[3]
    assert asym["template_bins"].shape == (4, 2, 32, 32) and asym["search_bins"].shape == (1, 1, 2, 64, 64)
    # the same sample (crops, flips, thinning) only binned differently
    assert torch.equal(asym["template_bins"].sum(0), same["template_bins"].sum(0))
    assert torch.equal(asym["template_bins"].sum(0), asym["template"]["events"])
    assert torch.equal(asym["search_bins"].sum((0, 1)), same["search_bins"].sum((0, 1)))


def test_extra_templates_are_the_first_frame_and_earlier_frames(square_dataset: Path) -> None:
    bins = InputSpec.event_bins(2)
    plain = PairDataset(tiny_config(square_dataset), inputs=[bins])
    three = PairDataset(tiny_config(square_dataset, **{"data.num_templates": 3}), inputs=[bins])
    for index in range(6):
        a, b = plain[index], three[index]
        assert "extra_template_bins" not in a
        # the template and search crops of a sample do not change when templates are added
        assert torch.equal(a["template_bins"], b["template_bins"]) and torch.equal(a["search_bins"], b["search_bins"])
        assert torch.equal(a["frames"], b["frames"])
        assert b["extra_template_bins"].shape == (2, 2, 2, 32, 32)
        frames = b["extra_template_frames"].tolist()
        entry = next(e for src in three.sources for e in src if str(e.path) == b["sequence"])
        template = int(b["frames"][0])
        assert frames[0] == int(entry.visible[0]) and frames == sorted(frames)
        assert all(f in entry.visible and f <= max(template, frames[0]) for f in frames)
    assert three.extra_templates(np.array([0, 1, 2, 3, 4, 5]), 5, 3, np.random.default_rng(0))[0] == 0
    assert three.extra_templates(np.array([2, 7]), 2, 2, np.random.default_rng(0)) == [2, 2]


def test_num_templates_is_checked(square_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="data.num_templates"):
        PairDataset(tiny_config(square_dataset, **{"data.num_templates": 0}), inputs=[InputSpec.event_bins(2)])
    with pytest.raises(ConfigError, match="data.num_templates"):
        PairDataset(tiny_config(square_dataset, **{"data.num_templates": 2}), inputs=[InputSpec.from_modalities("events")])


def _gate_grads(square_dataset: Path, num_templates: int) -> list[torch.Tensor]:
    cfg = tiny_config(square_dataset, **{"data.num_templates": num_templates})
    torch.manual_seed(0)
    model = build_model(cfg).train()
    ds = PairDataset(cfg, inputs=[model.input_spec])
    batch = default_collate([ds[0], ds[1]])
    out = run_model(model, batch, cfg.data.num_search)
    (out["score_map"].sum() + out["pred_boxes"].sum()).backward()
    return [m.gate.weight.grad for m in model.memory]


def test_the_gate_learns_only_with_two_templates(square_dataset: Path) -> None:
    one = _gate_grads(square_dataset, 1)
    assert all(g is None or not g.any() for g in one)  # one slot: softmax weight 1, the gate gets nothing
    two = _gate_grads(square_dataset, 2)
    assert all(g is not None and g.abs().sum() > 0 for g in two)


def test_stacked_templates_sample_one_bin_per_crop_and_train(square_dataset: Path, tmp_path: Path) -> None:
    """model.template_steps: templates (SpikeTrack): each template crop is one bin, the extra templates and the
    template are stacked as the template steps, and a training run goes through."""
    from spiketrack.train.trainer import train

    cfg = tiny_config(square_dataset, **{"model.timesteps": 1, "model.template_timesteps": 3,
                                         "model.template_steps": "templates", "data.num_templates": 3,
                                         "train.steps_per_epoch": 2})
    model = build_model(cfg)
    sample = PairDataset(cfg, inputs=[model.input_spec])[2]
    assert sample["template_bins"].shape == (1, 2, 32, 32)
    assert sample["extra_template_bins"].shape == (2, 1, 2, 32, 32)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.step == 2
