"""Template inputs of training samples: the template's own T_t (model.template_timesteps) and extra templates."""

from __future__ import annotations

from pathlib import Path

import torch
from trainsynth import tiny_config

from spiketrack.data.inputs import InputSpec
from spiketrack.train.sampling import PairDataset


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
