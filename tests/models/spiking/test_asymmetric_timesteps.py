"""Asymmetric timesteps (model.template_timesteps, SpikeTrack): input specs, shapes, the T_t = T_s identity,
the T_t-step memory used by a T_s-step search, template bins from data and the energy of template_init."""

from __future__ import annotations

import numpy as np
import torch

from spiketrack.config import load_config
from spiketrack.data.crop import CropWindow
from spiketrack.data.events import EventArray
from spiketrack.data.inputs import InputSpec, build_input
from spiketrack.energy.meter import EnergyMeter
from spiketrack.models import build_model, input_spec

ZS, XS, B = 32, 64, 2


def make(timesteps: int, template_timesteps: int | None) -> torch.nn.Module:
    torch.manual_seed(0)
    sets = ["model.kind=student", "model.variant=quickstart", f"model.timesteps={timesteps}",
            f"data.template_size={ZS}", f"data.search_size={XS}"]
    if template_timesteps is not None:
        sets.append(f"model.template_timesteps={template_timesteps}")
    return build_model(load_config(None, sets)).eval()


def calibrate(model: torch.nn.Module, template: torch.Tensor, search: torch.Tensor) -> None:
    """BN running statistics from one batch (eval-mode activity as after training), then eval()."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(template, search)
    model.eval()


def bins(t: int, size: int, seed: int, rate: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((t, B, 2, size, size), rate), generator=g)


def test_input_spec_carries_the_template_T() -> None:
    assert InputSpec.event_bins(2).template_bins == 2
    assert InputSpec.event_bins(2, 2) == InputSpec.event_bins(2)  # equal T: the same spec as before
    spec = InputSpec.event_bins(1, 4)
    assert (spec.timesteps, spec.template_bins, spec.bins_for(True), spec.bins_for(False)) == (1, 4, 4, 1)
    cfg = load_config(None, ["model.kind=student", "model.timesteps=1", "model.template_timesteps=4"])
    assert input_spec(cfg).template_bins == 4
    assert make(1, 4).input_spec.template_bins == 4


def test_build_input_bins_the_template_with_its_own_T() -> None:
    rng = np.random.default_rng(0)
    n = 500
    ev = EventArray(np.sort(rng.integers(1, 1000, n)).astype(np.int64), rng.integers(0, 32, n).astype(np.uint16),
                    rng.integers(0, 32, n).astype(np.uint16), rng.integers(0, 2, n).astype(np.uint8))
    window = CropWindow.around(np.array([0.0, 0.0, 32.0, 32.0]), 1.0)
    spec = InputSpec.event_bins(1, 4)
    template = build_input(spec, ev, 0, 1000, window, 16, template=True)
    search = build_input(spec, ev, 0, 1000, window, 16)
    assert template.shape == (4, 2, 16, 16) and search.shape == (1, 2, 16, 16)
    torch.testing.assert_close(template.sum(0), search[0])  # the same events, split into 4 bins


def test_equal_T_gives_todays_outputs() -> None:
    base, same = make(2, None), make(2, 2)
    template, search = bins(2, ZS, 0), bins(2, XS, 1)
    with torch.no_grad():
        a, b = base(template, search), same(template, search)
    for key in ("score_map", "size_map", "offset_map", "pred_boxes"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert all(s.shape[0] == 2 for s in same.encode_template(template).slots)  # memory keeps its T steps


def test_long_template_short_search_shapes_and_memory_mean() -> None:
    model = make(1, 4)
    template, search = bins(4, ZS, 0), bins(1, XS, 1)
    with torch.no_grad():
        memory = model.encode_template(template)
        out = model.track(search, memory, return_features=True)
        # the memory is the mean over the T_t template steps of the per-step memories
        model.reset_state()
        tokens, _ = model.backbone.conv_forward(torch.log1p(template))
        for i in range(model.memory_points[0] + 1):
            tokens, _ = model.backbone.block_forward(i, tokens)
        per_step = model.memory[0].build(tokens)  # [T_t, B, h, d, d]
    assert all(s.shape[:3] == (1, B, 1) for s in memory.slots)
    torch.testing.assert_close(memory.slots[0][:, :, 0], per_step.mean(0, keepdim=True))
    assert out["score_map"].shape == (B, 1, XS // 16, XS // 16) and out["pred_boxes"].shape == (B, 4)
    # a search of T_s = 2 steps queries the same one-step memory (broadcast), and several memories merge
    two = make(2, 4)
    with torch.no_grad():
        merged = two.merge_memories([two.encode_template(template), two.encode_template(bins(4, ZS, 3, 2.0))])
        out2 = two.track(bins(2, XS, 1), merged)
    assert merged.num_slots == 2 and out2["score_map"].shape == (B, 1, XS // 16, XS // 16)


def test_template_init_energy_scales_with_the_template_T() -> None:
    energies = {}
    for tt in (1, 2, 4):
        model = make(1, tt)
        meter = EnergyMeter(model, timesteps=1, template_timesteps=tt)
        one = bins(1, ZS, 0)[:, :1]
        template = one.repeat(tt, 1, 1, 1, 1)  # the same events in each template step
        with torch.no_grad(), meter.measure("template_init"):
            model.encode_template(template)
        s = meter.summary(layers=False)
        energies[tt] = s["kinds"]["template_init"]
        assert len(s["per_timestep_sop"]) == max(1, tt)
    # the encoding layer is dense: its MACs are exactly T_t times the one-step MACs
    assert energies[2]["mac"] == 2 * energies[1]["mac"] and energies[4]["mac"] == 4 * energies[1]["mac"]
    assert energies[4]["energy_mj"] > energies[2]["energy_mj"] > energies[1]["energy_mj"]


def test_meter_from_config_reads_the_template_T() -> None:
    model = make(1, 3)
    calibrate(model, bins(3, ZS, 0), bins(1, XS, 1))
    cfg = load_config(None, ["model.kind=student"])
    meter = EnergyMeter.from_config(model, cfg)
    assert (meter.timesteps_of("template_init"), meter.timesteps_of("template_update"),
            meter.timesteps_of("search")) == (3, 3, 1)
    with torch.no_grad():
        with meter.measure("template_init"):
            memory = model.encode_template(bins(3, ZS, 0)[:, :1])
        with meter.measure("search"):
            model.track(bins(1, XS, 1)[:, :1], memory)
    s = meter.summary(layers=False)
    assert s["template_timesteps"] == 3 and s["timesteps"] == 1 and len(s["per_timestep_sop"]) == 3
    assert s["per_timestep_sop"][1] > 0 and s["per_timestep_sop"][2] > 0  # steps only the template has


def test_template_T_equal_to_T_is_the_same_model_for_checkpoints() -> None:
    from spiketrack.models.checkpoint import model_settings

    def settings(*sets: str) -> dict:
        return model_settings(load_config(None, ["model.kind=student", "model.timesteps=4", *sets]))

    assert settings("model.template_timesteps=4") == settings()
    assert settings("model.template_timesteps=2") != settings()
