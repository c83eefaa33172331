"""SpikeTrack's asymmetric timesteps as its code does them (model.template_steps: templates): stacked template
crops as the template steps, search T = 1, per-step position embeddings, a gate over the retrieved steps."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.config import NeuronConfig, load_config
from spiketrack.energy.meter import EnergyMeter
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.models.spiking.memory import StepGate, StepPositions
from spiketrack.models.spiking.neurons import neuron_factory
from spiketrack.models.spiking.student import stack_templates

ZS, XS, B, STEPS = 32, 64, 2, 3
SETS = ["model.kind=student", "model.variant=quickstart", "model.timesteps=1", f"model.template_timesteps={STEPS}",
        "model.template_steps=templates", f"data.template_size={ZS}", f"data.search_size={XS}"]


def crop(seed: int, rate: float = 1.0, size: int = ZS) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((1, B, 2, size, size), rate), generator=g)


def make(*extra: str) -> torch.nn.Module:
    """The student with distinct step embeddings (they start at zero, as SpikeTrack's) and BN statistics from one
    batch, so that the untrained network fires (eval mode)."""
    torch.manual_seed(0)
    model = build_model(load_config(None, [*SETS, *extra]))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, StepPositions):
                m.template.normal_(std=0.5)
                m.search.normal_(std=0.5)
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 1.0
        model.train()(torch.cat([crop(10), crop(11), crop(12)]), crop(13, size=XS))
    return model.eval()


def test_stack_keeps_the_first_template_and_the_newest_ones() -> None:
    a, b, c, d = (torch.full((1, 1), float(v)) for v in range(4))
    assert stack_templates([a], 3).flatten().tolist() == [0, 0, 0]  # one crop fills every step
    assert stack_templates([a, b], 3).flatten().tolist() == [0, 0, 1]
    assert stack_templates([a, b, c, d], 3).flatten().tolist() == [0, 2, 3]
    assert stack_templates([a, b, c], 2).flatten().tolist() == [0, 2]
    assert stack_templates([a, b, c], 1).flatten().tolist() == [0]


def test_step_gate_weights_are_a_softmax_over_steps_from_each_channels_map() -> None:
    n, c = 8, 2
    gate = StepGate(n, neuron_factory(NeuronConfig(kind="lif", tau=2.0, v_threshold=1.0)))
    x = torch.zeros(3, 1, n, c)
    x[1] = 1.0  # only step 1 is active, in both channels
    with torch.no_grad():
        gate.fc1.weight.fill_(2.0 / n)  # hidden input = 2 x the channel's mean activity
        gate.fc1.bias.zero_()
        gate.fc2.weight.fill_(20.0 / gate.fc1.out_features)  # score 20 per step whose hidden units all fire
        gate.fc2.bias.zero_()
        # LIF (tau 2, threshold 1) over the steps: input 0, 2, 0 -> v 0, 1 (spike, reset), 0 -> scores 0, 20, 0
        w = gate.weights(x)
        expected = torch.tensor([1.0, math.exp(20.0), 1.0]) / (2.0 + math.exp(20.0))
        torch.testing.assert_close(w[:, 0, 0, 0], expected)
        torch.testing.assert_close(w.sum(0), torch.ones(1, 1, c))
        torch.testing.assert_close(gate(x), (x * expected.view(3, 1, 1, 1)).sum(0, keepdim=True))
        gate.fc2.weight.zero_()  # equal scores: the gate is the mean over the steps
        torch.testing.assert_close(gate(x * torch.arange(3.0).view(3, 1, 1, 1)), x.sum(0, keepdim=True) / 3)


def test_positions_add_one_embedding_per_template_step() -> None:
    pos = StepPositions(3, template_tokens=4, search_tokens=5, dim=2)
    with torch.no_grad():
        pos.template.copy_(torch.arange(3.0).view(3, 1, 1).expand(3, 4, 2))
        pos.search.fill_(7.0)
    out = pos(torch.zeros(3, 2, 4, 2), template=True)
    assert [float(out[t].detach().unique()) for t in range(3)] == [0.0, 1.0, 2.0]
    assert float(pos(torch.zeros(1, 2, 5, 2), template=False).detach().unique()) == 7.0
    with pytest.raises(ValueError, match="3 steps"):
        pos(torch.zeros(2, 2, 4, 2), template=True)


def test_template_branch_runs_the_stack_and_keeps_one_memory_per_step() -> None:
    model = make()
    spec = model.input_spec
    assert (spec.timesteps, spec.template_bins, spec.template_steps) == (1, 1, STEPS)
    a, b, c = crop(0), crop(1, 2.0), crop(2, 0.5)
    with torch.no_grad():
        one = model.encode_template(a)
        filled = model.encode_template(a.repeat(STEPS, 1, 1, 1, 1))
        stacked = model.encode_template(torch.cat([a, b, c]))
        swapped = model.encode_template(torch.cat([a, c, b]))
        out = model.track(crop(3, size=XS), stacked)
    assert all(s.shape[:3] == (STEPS, B, 1) for s in stacked.slots)  # no mean over the template steps
    assert stacked.inputs is not None and stacked.inputs.shape == (STEPS, B, 2, ZS, ZS)
    for x, y in zip(one.slots, filled.slots, strict=True):  # one crop fills every step (SpikeTrack's tracker start)
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not all(torch.equal(x, y) for x, y in zip(stacked.slots, swapped.slots, strict=True))  # order matters
    assert out["score_map"].shape == (B, 1, XS // 16, XS // 16) and out["pred_boxes"].shape == (B, 4)
    with pytest.raises(ValueError, match="1 or 3 stacked template crops"):
        model.encode_template(torch.cat([a, b]))


def test_one_search_step_retrieves_every_template_step_and_the_gate_fuses_them() -> None:
    model = make()
    seen = []
    model.memory[0].step_gate.register_forward_hook(lambda m, i, o: seen.append((i[0].shape, o.shape)))
    with torch.no_grad():
        model.track(crop(3, size=XS), model.encode_template(torch.cat([crop(0), crop(1), crop(2)])))
    n_search = (XS // 16) ** 2
    c = model.backbone.block_dims[model.memory_points[0]]
    assert seen == [(torch.Size([STEPS, B, n_search, c]), torch.Size([1, B, n_search, c]))]


def test_template_updates_and_training_merge_by_stacking_crops() -> None:
    model = make()
    a, b, c, d = crop(0), crop(1, 2.0), crop(2, 0.5), crop(4, 3.0)
    with torch.no_grad():
        expected = model.encode_template(torch.cat([a, c, d]))  # SpikeTrack's list after three updates
        merged = model.merge_memories([model.encode_template(x) for x in (a, b, c, d)])
        direct = model.encode_templates([a, b, c, d])
    for m in (merged, direct):
        for x, y in zip(m.slots, expected.slots, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_training_feeds_the_stack_of_the_sample_templates() -> None:
    from spiketrack.train.trainer import run_model

    model = make()
    t, e0, e1 = crop(0), crop(1), crop(2)
    search = torch.poisson(torch.full((B, 1, 1, 2, XS, XS), 1.0), generator=torch.Generator().manual_seed(5))
    batch = {"template_bins": t.transpose(0, 1), "extra_template_bins": torch.stack([e0[0], e1[0]], 1)[:, :, None],
             "search_bins": search}
    with torch.no_grad():
        out = run_model(model, batch, 1)
        ref = model.track(search[:, 0].transpose(0, 1), model.encode_template(torch.cat([e0, e1, t])))
    torch.testing.assert_close(out["score_map"], ref["score_map"], rtol=0, atol=0)


def test_energy_counts_template_calls_with_the_stacked_steps() -> None:
    model = make()
    meter = EnergyMeter.from_config(model, load_config(None, SETS))
    assert (meter.timesteps_of("template_init"), meter.timesteps_of("search")) == (STEPS, 1)
    with torch.no_grad(), meter.measure("template_init"):
        model.encode_template(crop(0)[:, :1])
    s = meter.summary(layers=False)
    assert len(s["per_timestep_sop"]) == STEPS and s["template_timesteps"] == STEPS


@pytest.mark.parametrize(("sets", "message"), [
    (["model.timesteps=2"], "model.timesteps: 1"),
    (["model.template_timesteps=null"], "template_timesteps set"),
    (["model.variant=deployable", "model.neuron.kind=lif"], "Spiking MetaFormer"),
])
def test_settings_it_cannot_run_are_refused(sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(load_config(None, [*SETS, *sets]))
