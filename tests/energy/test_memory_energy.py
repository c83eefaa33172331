"""Memory-aware energy (Lemaire et al., 2022) cross-checked against spikingjelly 2.0's own estimators:
the exact SOP counts equal spikingjelly's SynOpCounter on a binary-spike network, and the memory accesses,
buffer sizes and energies equal its LemaireEnergyProfiler where both models charge the same synapses."""

from __future__ import annotations

import math

import pytest
import torch
from spikingjelly.activation_based import layer as sj_layer
from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
from spikingjelly.activation_based.op_counter.analytical_energy import estimate_lemaire_energy
from torch import nn

from spiketrack.energy.counter import count_operations
from spiketrack.energy.memory import LEMAIRE, memory_report
from spiketrack.models.spiking.neurons import LIF, reset_neurons

T, B = 3, 2


class SmallSNN(nn.Module):
    """Dense conv (encoding) -> LIF -> spike conv (kernel k) -> LIF -> spike linear -> LIF, multi-step."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv1 = sj_layer.Conv2d(2, 8, 3, padding=1, bias=False, step_mode="m")
        self.lif1 = LIF(tau=2.0, v_threshold=0.5)
        self.conv2 = sj_layer.Conv2d(8, 16, k, padding=k // 2, bias=False, step_mode="m")
        self.lif2 = LIF(tau=2.0, v_threshold=0.5)
        self.fc = sj_layer.Linear(16 * 8 * 8, 10, bias=False, step_mode="m")
        self.lif3 = LIF(tau=2.0, v_threshold=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif2(self.conv2(self.lif1(self.conv1(x))))
        return self.lif3(self.fc(s.flatten(2)))


def _net(k: int) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = SmallSNN(k).eval()
    x = torch.rand(T, B, 2, 8, 8) * 2
    return net, x


def _ours(net: nn.Module, x: torch.Tensor):
    reset_neurons(net)
    report = count_operations(net, x, timesteps=T, batch_size=B)
    return report, memory_report(report, net)


@pytest.mark.parametrize("k", [1, 3])
def test_exact_sops_equal_spikingjelly_synop_counter(k: int) -> None:
    net, x = _net(k)
    report, _ = _ours(net, x)
    counter = SynOpCounter()
    reset_neurons(net)
    with torch.no_grad(), DispatchCounterMode([counter]):
        net(x)
    spike_sop = sum(layer.sop for layer in report.layers if layer.input_kind == "spike")
    assert spike_sop > 1000
    assert report.total_sop == spike_sop
    assert counter.get_total() == spike_sop


def test_memory_accesses_and_energy_equal_spikingjelly_lemaire() -> None:
    """1x1 spike conv: every synapse of an input spike exists, so both models charge the same accesses."""
    net, x = _net(1)
    report, mem = _ours(net, x)
    reset_neurons(net)
    theirs = estimate_lemaire_energy(net, x)
    tot = mem.totals()
    assert tot["addr_adds"] == theirs.counts["acc_addr"]
    assert tot["addr_muls"] == theirs.counts["mac_addr"]
    bd = theirs.breakdown_pj
    assert tot["weight_pj"] == pytest.approx(bd["params_pj"], rel=1e-9)
    assert tot["potential_pj"] == pytest.approx(bd["potential_pj"], rel=1e-9)
    assert tot["inout_pj"] == pytest.approx(bd["inout_pj"], rel=1e-9)
    assert tot["memory_pj"] == pytest.approx(bd["memory_pj"], rel=1e-9)
    assert tot["addressing_pj"] == pytest.approx(bd["addressing_pj"], rel=1e-9)
    assert bd["memory_pj"] > 0 and bd["potential_pj"] > 0


def test_border_taps_make_ours_smaller_for_wider_kernels() -> None:
    """3x3 spike conv: spikingjelly charges C_out k^2 synapses per spike, also off the output at the borders;
    the exact fan-out is smaller by exactly those border taps."""
    net, x = _net(3)
    report, mem = _ours(net, x)
    reset_neurons(net)
    theirs = estimate_lemaire_energy(net, x)
    conv2 = next(layer for layer in report.layers if layer.name == "conv2")
    events = conv2.firing_rate * math.prod(conv2.input_shape)
    charged_by_sj = events * 16 * 9
    assert conv2.sop < charged_by_sj
    ours_adds = mem.totals()["addr_adds"]
    assert theirs.counts["acc_addr"] - ours_adds == pytest.approx(charged_by_sj - conv2.sop)


def test_cost_interpolates_lemaire_breakpoints() -> None:
    assert LEMAIRE.pj_per_byte(8 * 1024) * 4 == pytest.approx(10.0)
    assert LEMAIRE.pj_per_byte(32 * 1024) * 4 == pytest.approx(20.0)
    assert LEMAIRE.pj_per_byte(20 * 1024) * 4 == pytest.approx(15.0)
    assert LEMAIRE.pj_per_byte(10 * 1024 * 1024) * 4 == pytest.approx(100.0)


def test_meter_memory_fields_are_new_and_leave_the_compute_fields_identical() -> None:
    from spiketrack.config import load_config
    from spiketrack.energy.meter import EnergyMeter
    from spiketrack.models import build_model

    cfg = load_config("configs/quickstart_student.yaml")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    template = torch.poisson(torch.full((1, 1, 2, 64, 64), 0.5), generator=g)
    search = [torch.poisson(torch.full((1, 1, 2, 128, 128), 0.5), generator=g) for _ in range(2)]

    def run(memory: bool) -> dict:
        meter = EnergyMeter(model, timesteps=1, memory=memory)
        mem = meter.count_template(model.encode_template, template)
        for s in search:
            meter.count_search(model.track, s, mem)
        return meter.summary()

    plain, with_mem = run(False), run(True)
    new = set(with_mem) - set(plain)
    assert new == {"memory_model", "energy_mj_memory_sequence", "energy_mj_memory_per_frame",
                   "energy_mj_with_memory_sequence", "energy_mj_with_memory_per_frame", "memory_total",
                   "memory_kinds_mj", "memory_layers"}
    assert {k: with_mem[k] for k in plain} == plain
    assert with_mem["energy_mj_memory_sequence"] > 0
    assert with_mem["energy_mj_with_memory_sequence"] == pytest.approx(
        plain["energy_mj_sequence"] + with_mem["energy_mj_memory_sequence"])
    per_layer = sum(r["memory_pj"] + r["addressing_pj"] for rows in with_mem["memory_layers"].values() for r in rows)
    assert per_layer * 1e-9 == pytest.approx(with_mem["energy_mj_memory_sequence"])
    assert sum(with_mem["memory_kinds_mj"].values()) == pytest.approx(with_mem["energy_mj_memory_sequence"])
