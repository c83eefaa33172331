"""The neuron factory: known spike trains, value sets, torch path == automatic path, config errors."""

from __future__ import annotations

import pytest
import torch

from spiketrack.config import NeuronConfig
from spiketrack.errors import ConfigError
from spiketrack.models.spiking.neurons import LIF, IntegerLIF, implementation, make_neuron, neuron_levels, reset_neurons


def test_lif_hand_computed_spike_train() -> None:
    # tau=2, hard reset to 0: v <- v + (x - v)/2; spike when v >= 1.
    # x = 1.5: v = 0.75 (no); x = 1.5: v = 1.125 (spike, reset); x = 0: v = 0; x = 3: v = 1.5 (spike)
    n = make_neuron(NeuronConfig(kind="lif", tau=2.0, v_threshold=1.0))
    x = torch.tensor([1.5, 1.5, 0.0, 3.0]).view(4, 1)
    assert n(x).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_integer_lif_hand_computed_values() -> None:
    # I-LIF, tau=2 (decay 1 - 1/tau = 0.5), D=4, soft reset: h = 0.5 v + x; count = round(clamp(h, 0, 4)).
    # x=2.6: h=2.6 -> 3 (out 0.75), v=-0.4; x=0: h=-0.2 -> 0, v=-0.2; x=1.2: h=1.1 -> 1 (out 0.25)
    n = make_neuron(NeuronConfig(kind="integer_lif", tau=2.0, levels=4))
    x = torch.tensor([2.6, 0.0, 1.2]).view(3, 1)
    torch.testing.assert_close(n(x).flatten(), torch.tensor([0.75, 0.0, 0.25]))
    assert n.levels == 4


@pytest.mark.parametrize(("kind", "levels"), [("lif", 1), ("integer_lif", 1), ("integer_lif", 2), ("integer_lif", 4)])
def test_outputs_lie_on_the_level_grid(kind: str, levels: int) -> None:
    torch.manual_seed(0)
    n = make_neuron(NeuronConfig(kind=kind, levels=levels))
    out = n(torch.randn(4, 3, 50) * 4)
    allowed = torch.arange(levels + 1) / levels
    assert torch.isin(out, allowed).all()
    assert len(out.unique()) == levels + 1  # every level occurs at this input scale


@pytest.mark.parametrize(("kind", "levels"), [("lif", 1), ("integer_lif", 2)])
def test_torch_path_matches_automatic_path(kind: str, levels: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 2, 30) * 3
    results = []
    for backend in ("auto", "torch"):
        n = make_neuron(NeuronConfig(kind=kind, levels=levels, backend=backend))
        xi = x.clone().requires_grad_()
        y = n(xi)
        (y * torch.linspace(0, 1, 30)).sum().backward()
        results.append((y.detach(), xi.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    assert results[0][1].abs().sum() > 0  # the surrogate gradient flows


def test_state_persists_within_a_call_sequence_until_reset() -> None:
    n = make_neuron(NeuronConfig())
    x = torch.full((1, 1), 1.5)
    assert n(x).item() == 0.0  # v = 0.75
    assert n(x).item() == 1.0  # state carried over: v = 1.125
    reset_neurons(n)
    assert n(x).item() == 0.0


def test_factory_types_levels_and_errors() -> None:
    assert isinstance(make_neuron(NeuronConfig()), LIF)
    assert isinstance(make_neuron(NeuronConfig(kind="integer_lif", levels=3)), IntegerLIF)
    assert make_neuron(NeuronConfig()).step_mode == "m"
    assert neuron_levels(NeuronConfig(kind="integer_lif", levels=3)) == 3
    assert neuron_levels(NeuronConfig()) == 1
    assert implementation(NeuronConfig(), torch.device("cpu")) == "torch-reference"
    with pytest.raises(ConfigError, match="model.neuron.surrogate"):
        make_neuron(NeuronConfig(surrogate="nope"))
    with pytest.raises(ConfigError, match="model.neuron.levels"):
        make_neuron(NeuronConfig(kind="lif", levels=2))
    with pytest.raises(ConfigError, match="model.neuron.levels"):
        make_neuron(NeuronConfig(kind="integer_lif", levels=0))


def test_backend_request_after_import_is_reported_not_forced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # spikingjelly is imported already: its variables are not rewritten behind its back (no private selection
    # writes); the request is logged as not applied. CPU tensors run the Torch path whatever the backend.
    monkeypatch.delenv("SJ_LIF_CUDA_IMPLEMENTATION", raising=False)
    monkeypatch.delenv("SJ_ILIF_CUDA_IMPLEMENTATION", raising=False)
    from spiketrack.models.spiking import backend

    monkeypatch.setattr(backend, "_noted", set())  # warnings are logged once per process
    with caplog.at_level("WARNING"):
        n = make_neuron(NeuronConfig(backend="triton"))
    import os

    assert "SJ_LIF_CUDA_IMPLEMENTATION" not in os.environ
    assert "not applied" in caplog.text
    assert n(torch.full((2, 1), 3.0)).flatten().tolist() == [1.0, 1.0]
    assert implementation(NeuronConfig(backend="triton"), torch.device("cpu")) == "torch-reference"


def test_neuron_table_and_factory() -> None:
    from spiketrack.models.spiking.neurons import NEURONS, neuron_factory

    assert {k: (v.cls, v.op) for k, v in NEURONS.items()} == {"lif": (LIF, "lif"), "integer_lif": (IntegerLIF, "ilif")}
    factory = neuron_factory(NeuronConfig(kind="integer_lif", levels=3, tau=3.0))
    a, b = factory(), factory()
    assert a is not b and isinstance(a, IntegerLIF) and a.levels == b.levels == 3 and a.tau == 3.0
    with pytest.raises(ConfigError, match="model.neuron.kind"):
        neuron_factory(NeuronConfig(kind="plif"))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "levels"), [("lif", 1), ("integer_lif", 4)])
def test_membrane_stays_float32_under_bf16_autocast(kind: str, levels: int) -> None:
    """Fused kernels need a float32 membrane: the neuron casts its bf16 input up and its spikes back down."""
    torch.manual_seed(2)
    x = (torch.randn(4, 2, 16) * 3).to(torch.bfloat16).float()  # values exactly representable in bf16
    ref = make_neuron(NeuronConfig(kind=kind, levels=levels))
    expected = ref(x)
    n = make_neuron(NeuronConfig(kind=kind, levels=levels))
    xb = x.to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = n(xb)
    assert n.v.dtype == torch.float32  # the membrane after the last step
    assert y.dtype == torch.bfloat16  # spikes cast back to the input dtype
    torch.testing.assert_close(y.float(), expected)  # the same spikes as the float32 run (levels are exact in bf16)
    y.float().sum().backward()
    assert xb.grad is not None and xb.grad.dtype == torch.bfloat16 and xb.grad.abs().sum() > 0


def test_float32_input_is_not_copied_and_gives_float32_spikes() -> None:
    n = make_neuron(NeuronConfig())
    y = n(torch.full((2, 1), 3.0))
    assert y.dtype == torch.float32 and n.v.dtype == torch.float32


def test_forced_backend_on_cpu_is_said_once_at_start_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from spiketrack.models.spiking import backend
    from spiketrack.models.spiking.neurons import check_backend

    monkeypatch.setattr(backend, "_noted", set())
    with caplog.at_level("WARNING"):
        assert check_backend(NeuronConfig(backend="triton"), "cpu") == "torch-reference"
        assert check_backend(NeuronConfig(backend="triton"), "cpu") == "torch-reference"
    lines = [r.getMessage() for r in caplog.records if "selects a CUDA implementation" in r.getMessage()]
    assert lines == ["model.neuron.backend 'triton' selects a CUDA implementation; on cpu every neuron runs "
                     "spikingjelly's Torch path"]
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert check_backend(NeuronConfig(backend="auto"), "cpu") == "torch-reference"
        assert check_backend(NeuronConfig(backend="torch"), "cpu") == "torch-reference"
    assert caplog.text == ""
    with pytest.raises(ConfigError, match="model.neuron.backend"):
        check_backend(NeuronConfig(backend="cupy"), "cpu")  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("kind", "levels"), [("lif", 1), ("integer_lif", 4)])
def test_cuda_neurons_agree_with_the_cpu_reference_under_autocast(kind: str, levels: int) -> None:
    from spiketrack.models.spiking.neurons import check_backend

    cfg = NeuronConfig(kind=kind, levels=levels)
    check_backend(cfg, "cuda", torch.bfloat16)
    x = (torch.randn(4, 2, 64) * 3).to(torch.bfloat16).float()
    ref = make_neuron(cfg)(x)
    n = make_neuron(cfg).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = n(x.cuda().to(torch.bfloat16))
    assert n.v.dtype == torch.float32
    torch.testing.assert_close(y.float().cpu(), ref)
