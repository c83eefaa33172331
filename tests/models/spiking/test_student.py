"""The spiking student: shapes, level grid of every neuron, template caching, one-way flow, gradients,
state reset, memory merging, parameter counts and config errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spiketrack.config import load_config
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.models.spiking.neurons import SpikingNeuron, reset_neurons
from spiketrack.models.spiking.student import SpikingStudent

T, B, ZS, XS = 2, 2, 32, 64


def make_student(*overrides: str) -> SpikingStudent:
    torch.manual_seed(0)
    cfg = load_config(
        None,
        [
            "model.kind=student",
            "model.variant=quickstart",
            f"model.timesteps={T}",
            f"data.template_size={ZS}",
            f"data.search_size={XS}",
            *overrides,
        ],
    )
    return build_model(cfg)


def bins(size: int, seed: int, rate: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, B, 2, size, size), rate), generator=g)


def calibrate(model: nn.Module, template: torch.Tensor, search: torch.Tensor) -> None:
    """Set BN running statistics from one batch (so eval-mode activity is realistic), then eval()."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(template, search)
    for m in bns:
        m.momentum = 0.1
    model.eval()


@pytest.fixture(scope="module")
def student() -> SpikingStudent:
    model = make_student()
    calibrate(model, bins(ZS, 0), bins(XS, 1))
    return model


def test_output_shapes_and_features(student: SpikingStudent) -> None:
    with torch.no_grad():
        out = student(bins(ZS, 0), bins(XS, 1), return_features=True)
    hf = XS // 16
    assert out["score_map"].shape == (B, 1, hf, hf)
    assert out["size_map"].shape == (B, 2, hf, hf)
    assert out["offset_map"].shape == (B, 2, hf, hf)
    assert out["pred_boxes"].shape == (B, 4)
    assert ((out["score_map"] > 0) & (out["score_map"] < 1)).all()
    nblocks = len(student.backbone.blocks)
    assert len(out["features"]) == len(out["similarity"]) == nblocks
    assert out["features"][0].shape == (B, hf * hf, student.backbone.block_dims[0])
    assert out["features"][-1].shape == (B, hf * hf, student.backbone.out_dim)
    assert out["similarity"][0].shape == (B, 4, hf * hf, hf * hf)
    with torch.no_grad():
        plain = student(bins(ZS, 0), bins(XS, 1))
    assert "features" not in plain and "similarity" not in plain
    torch.testing.assert_close(plain["score_map"], out["score_map"])


@pytest.mark.parametrize(("kind", "levels"), [("lif", 1), ("integer_lif", 2), ("integer_lif", 4)])
def test_every_neuron_output_is_on_the_level_grid(kind: str, levels: int) -> None:
    model = make_student(f"model.neuron.kind={kind}", f"model.neuron.levels={levels}")
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    assert len(neurons) > 50
    outputs: list[torch.Tensor] = []
    handles = [n.register_forward_hook(lambda m, i, o: outputs.append(o.detach())) for n in neurons]
    model.train()
    with torch.no_grad():
        model(bins(ZS, 0), bins(XS, 1))
    for h in handles:
        h.remove()
    allowed = torch.arange(levels + 1, dtype=torch.float32) / levels
    assert len(outputs) >= len(neurons)
    for out in outputs:
        assert torch.isin(out, allowed).all()
    values = torch.cat([o.flatten() for o in outputs]).unique()
    assert torch.isin(allowed, values).all()  # every level is used somewhere (the network is active)


def test_cached_memory_equals_recomputing_the_template_each_frame(student: SpikingStudent) -> None:
    template = bins(ZS, 0)
    with torch.no_grad():
        memory = student.encode_template(template)
        for frame in range(3):
            search = bins(XS, 10 + frame, rate=0.5 + frame)
            cached = student.track(search, memory)
            fresh = student(template, search)
            for key in ("score_map", "size_map", "offset_map", "pred_boxes"):
                torch.testing.assert_close(cached[key], fresh[key])


def test_search_input_never_changes_the_memory(student: SpikingStudent) -> None:
    template = bins(ZS, 0)
    with torch.no_grad():
        memory = student.encode_template(template)
        before = [s.clone() for s in memory.slots]
        out_a = student.track(bins(XS, 1), memory)
        out_b = student.track(bins(XS, 2, rate=3.0), memory)
        again = student.encode_template(template)
    assert not torch.equal(out_a["score_map"], out_b["score_map"])  # the search input matters
    for b0, s, a in zip(before, memory.slots, again.slots, strict=True):
        assert torch.equal(b0, s)
        assert torch.equal(b0, a)
    assert any(s.sum() > 0 for s in memory.slots)  # the memory holds spike products
    # memory shape is per head [d, d], independent of the template token count
    bigger = student.encode_template(torch.poisson(torch.ones(T, B, 2, 2 * ZS, 2 * ZS)))
    assert [s.shape for s in bigger.slots] == [s.shape for s in memory.slots]


def test_gradients_reach_the_first_layer_through_the_surrogate() -> None:
    model = make_student()
    model.train()
    out = model(bins(ZS, 0), bins(XS, 1))
    loss = out["score_map"].mean() + out["size_map"].mean() + out["offset_map"].pow(2).mean()
    loss.backward()
    grad = model.backbone.stem.conv.conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # the memory's template-side projections learn too (template -> search path is differentiable)
    assert model.memory[0].k.linear.weight.grad.abs().sum() > 0


def test_reset_makes_calls_independent(student: SpikingStudent) -> None:
    x1, x2 = bins(XS, 1), bins(XS, 2, rate=2.0)
    with torch.no_grad():
        memory = student.encode_template(bins(ZS, 0))
        first = student.track(x2, memory)["score_map"]
        student.track(x1, memory)
        second = student.track(x2, memory)["score_map"]
        torch.testing.assert_close(first, second)
        # without the reset the membrane state leaks from one call into the next
        backbone = student.backbone
        reset_neurons(backbone)
        a = backbone(x2)
        b = backbone(x2)
        reset_neurons(backbone)
        c = backbone(x2)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, c)
    student.reset_state()
    assert all(isinstance(n.v, float) and n.v == 0.0 for n in student.modules() if isinstance(n, SpikingNeuron))


def test_merged_memories_gate_slots(student: SpikingStudent) -> None:
    search = bins(XS, 1)
    with torch.no_grad():
        m1 = student.encode_template(bins(ZS, 0))
        m2 = student.encode_template(bins(ZS, 5, rate=3.0))
        merged = student.merge_memories([m1, m2])
        assert merged.num_slots == 2
        for w in merged.weights:
            assert w.shape == (B, 2, 4)
            torch.testing.assert_close(w.sum(dim=1), torch.ones(B, 4))
        # identical slots: the gate's weights sum to one, so retrieval equals the single memory's
        same = student.merge_memories([m1, m1])
        torch.testing.assert_close(student.track(search, same)["score_map"], student.track(search, m1)["score_map"])
        mixed = student.track(search, merged)["score_map"]
    assert not torch.allclose(mixed, student.track(search, m1)["score_map"])


def _meta_params(*overrides: str) -> int:
    cfg = load_config(None, ["model.kind=student", *overrides])
    with torch.device("meta"):
        model = build_model(cfg)
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts() -> None:
    tiny = _meta_params("model.variant=tiny")
    base = _meta_params("model.variant=base")
    print(f"student tiny {tiny / 1e6:.2f} M, base {base / 1e6:.2f} M parameters")
    assert abs(tiny - 19.61e6) <= 0.10 * 19.61e6  # SDTrack-Tiny: 19.61 M (Shan et al., 2025)
    assert base > 3 * tiny


def test_tiny_and_base_shapes_at_default_crops() -> None:
    # shape propagation on the meta device: full-size variants without allocating or computing
    for variant in ("tiny", "base"):
        cfg = load_config(None, ["model.kind=student", f"model.variant={variant}"])  # 128/256 crops, T=4
        with torch.device("meta"):
            model = build_model(cfg).eval()
            memory = model.encode_template(torch.rand(4, 1, 2, 128, 128))
            out = model.track(torch.rand(4, 1, 2, 256, 256), memory)
        assert out["score_map"].shape == (1, 1, 16, 16) and out["size_map"].shape == (1, 2, 16, 16)
        assert out["offset_map"].shape == (1, 2, 16, 16) and out["pred_boxes"].shape == (1, 4)
        assert memory.slots[0].shape == (4, 1, 1, 8, model.backbone.block_dims[3] // 8, model.backbone.block_dims[3] // 8)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="model.variant"):
        make_student("model.variant=huge")
    with pytest.raises(ConfigError, match="model.overrides.depthz"):
        make_student("model.overrides={depthz: 3}")
    with pytest.raises(ConfigError, match="memory_points"):
        make_student("model.overrides={memory_points: [7]}")
    with pytest.raises(ConfigError, match="data.timesteps"):
        make_student("data.timesteps=3")
    with pytest.raises(ConfigError, match="model.modalities"):
        make_student("model.modalities=rgb+events")
    with pytest.raises(ConfigError, match="data.search_size"):
        make_student("data.search_size=60")
    model = make_student("model.overrides={dims: [8, 16, 32, 48], head_channels: 16}")
    assert model.backbone.out_dim == 48


def test_stem_kernel_sets_the_encoding_conv() -> None:
    for k in (3, 7):
        cfg = load_config(None, ["model.kind=student", "model.variant=quickstart", f"model.overrides={{stem_kernel: {k}}}",
                                 "data.template_size=32", "data.search_size=64"])
        model = build_model(cfg)
        conv = model.backbone.stem.conv.conv
        assert conv.kernel_size == (k, k) and conv.padding == (k // 2, k // 2) and conv.stride == (2, 2)
        out = model(torch.zeros(4, 1, 2, 32, 32), torch.zeros(4, 1, 2, 64, 64))
        assert out["score_map"].shape == (1, 1, 4, 4)  # padding k // 2 keeps the stride-16 grid
