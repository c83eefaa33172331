"""Memory-aware energy beside the compute-only figure: weight and membrane-potential memory accesses,
input/output spike traffic and addressing, after Lemaire et al. (2022).

Source: E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J. Courtois, B. Miramond, "An analytical
estimation of spiking neural networks energy efficiency", ICONIP 2022 (LNCS 13623, Springer 2023,
doi:10.1007/978-3-031-30105-6_48; arXiv:2210.13107). Their model charges, besides the arithmetic,
every memory access with an energy that grows with the size of the memory it hits (45 nm SRAM, 32-bit
words: ~10 pJ for an 8 KB, ~20 pJ for a 32 KB and ~100 pJ for a 1 MB memory, linearly interpolated), and
charges addressing: an event-driven layer computes, per input spike, the address of its first target
(2 multiplications) and one addition per synapse it then walks. We use the constants and per-layer rules
of spikingjelly 2.0's implementation of that model (``op_counter.analytical_energy.LemaireEnergyProfiler``:
32-bit int add 0.1 pJ, mult 3.1 pJ (Horowitz 2014), the breakpoints above, 1000-message spike FIFOs) so the
two can be cross-checked, with one deliberate difference: the synapses an input spike touches are the
*exact* fan-out counted by :mod:`spiketrack.energy.counter` (spikingjelly charges ``C_out/g * k^2`` per spike,
also for taps that fall outside the output at the borders).

Per call of a layer with spike input (SOP):
    weight reads = SOP;  potential reads = potential writes = SOP (read-modify-write per synaptic event);
    input reads = input spike events (FIFO);  addressing: SOP adds + 2 mults (+ add) per input event (conv).
Per call of a layer with dense input (MAC): weight reads = MAC; input reads = MAC (conv) / input size
(linear); addressing: input + output size (+ C_out k^2 for a conv) adds.
Per neuron call: potential read + write of every neuron every timestep; output spike writes (FIFO).
Spike x spike products (attention; not in Lemaire's model) are charged as a spike-input linear layer whose
"weights" are the second operand: one operand read and one accumulator read-modify-write per SOP, the operand
held in a memory the size of one timestep's product output (an approximation).

Every access is a 32-bit word (``word_bytes``); its energy per byte is the interpolated cost of the memory it
hits, whose size is the layer's weights, the layer's membrane potentials of one timestep, its input (dense)
or the spike FIFO. Biases are not charged (the student's layers have none before BN folding).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from spiketrack.energy.operations import LayerOps, NeuronOps, OperationReport

KIB = 1024.0


@dataclass(frozen=True)
class MemoryCostModel:
    """Per-access costs of Lemaire et al. (2022), in spikingjelly 2.0's parameterisation."""

    e_add_pj: float = 0.1  # 32-bit integer add, 45 nm (Horowitz 2014)
    e_mul_pj: float = 3.1  # 32-bit integer multiply, 45 nm (Horowitz 2014)
    word_bytes: int = 4  # 32-bit accesses
    # (memory size in bytes, pJ per byte accessed): 10 / 20 / 100 pJ per 32-bit access of an 8 KB / 32 KB / 1 MB SRAM
    breakpoints: tuple[tuple[float, float], ...] = (
        (0.0, 0.0), (8 * KIB, 10.0 / 4), (32 * KIB, 20.0 / 4), (1024 * KIB, 100.0 / 4),
    )
    fifo_messages: int = 1000  # spike FIFO depth of Lemaire's experiments
    source: str = ("E. Lemaire et al., 'An analytical estimation of spiking neural networks energy efficiency', "
                   "ICONIP 2022, doi:10.1007/978-3-031-30105-6_48; constants as in spikingjelly 2.0 "
                   "op_counter.analytical_energy")

    def pj_per_byte(self, capacity_bytes: float) -> float:
        """Energy per byte accessed in a memory of ``capacity_bytes`` (piecewise linear, clamped at the ends)."""
        pts = self.breakpoints
        c = max(pts[0][0], min(float(capacity_bytes), pts[-1][0]))
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if c <= x1:
                return y0 + (y1 - y0) / (x1 - x0) * (c - x0)
        return pts[-1][1]  # pragma: no cover - the clamp makes the loop return

    def access_pj(self, words: float, capacity_bytes: float) -> float:
        """Energy of ``words`` 32-bit accesses to a memory of ``capacity_bytes``."""
        return words * self.word_bytes * self.pj_per_byte(capacity_bytes)


LEMAIRE = MemoryCostModel()


@dataclass
class LayerMemory:
    """Memory accesses (in words) and their energy (pJ) of one layer or neuron call."""

    name: str
    type: str
    input_kind: str  # 'spike' | 'dense' | 'neuron'
    weights: int = 0  # stored synaptic weights (size of the weight memory, words)
    weight_reads: float = 0
    potential_reads: float = 0
    potential_writes: float = 0
    input_reads: float = 0
    output_writes: float = 0
    addr_adds: float = 0
    addr_muls: float = 0
    weight_pj: float = 0.0
    potential_pj: float = 0.0
    inout_pj: float = 0.0
    addressing_pj: float = 0.0

    @property
    def memory_pj(self) -> float:
        return self.weight_pj + self.potential_pj + self.inout_pj

    @property
    def total_pj(self) -> float:
        return self.memory_pj + self.addressing_pj

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "memory_pj": self.memory_pj, "total_pj": self.total_pj}


def _module_for(name: str, modules: dict[str, nn.Module]) -> nn.Module | None:
    return modules.get(name.split("#")[0])


def _per_step(shape: list[int], timesteps: int | None) -> int:
    n = math.prod(shape)
    return n // timesteps if timesteps else n


def layer_memory(layer: LayerOps, module: nn.Module | None, cost: MemoryCostModel = LEMAIRE) -> LayerMemory:
    """Memory accesses of one layer call (``module``: the layer, for its weight count and kernel; may be None)."""
    w = cost.word_bytes
    out_numel = math.prod(layer.output_shape)
    in_numel = math.prod(layer.input_shape)
    row = LayerMemory(layer.name, layer.type, layer.input_kind)
    weight = getattr(module, "weight", None)
    is_conv = isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
    if weight is not None:
        row.weights = int(weight.numel())
    pot_capacity = _per_step(layer.output_shape, layer.timesteps) * w
    if weight is None:  # spike x spike product: its second operand sits in a memory sized like one step's output
        row.weights = pot_capacity // w
    if layer.input_kind == "dense":
        row.weight_reads = layer.mac
        row.input_reads = layer.mac if is_conv else in_numel
        row.addr_adds = in_numel + out_numel
        if is_conv:
            row.addr_adds += module.out_channels * math.prod(module.kernel_size)
        row.inout_pj = cost.access_pj(row.input_reads, in_numel * w)
    else:
        events = (layer.firing_rate or 0.0) * in_numel  # integer counts: unit spike events entering the layer
        row.weight_reads = layer.sop
        row.potential_reads = row.potential_writes = layer.sop
        row.input_reads = events
        row.addr_adds = layer.sop
        row.addr_muls = 2 * events if is_conv else 0
        row.potential_pj = cost.access_pj(row.potential_reads + row.potential_writes, pot_capacity)
        row.inout_pj = cost.access_pj(row.input_reads, cost.fifo_messages * w)
    row.weight_pj = cost.access_pj(row.weight_reads, row.weights * w)
    row.addressing_pj = row.addr_adds * cost.e_add_pj + row.addr_muls * (cost.e_mul_pj + cost.e_add_pj)
    return row


def neuron_memory(neuron: NeuronOps, cost: MemoryCostModel = LEMAIRE, multistep: bool = True) -> LayerMemory:
    """Memory accesses of one neuron call: every membrane potential read and written each timestep, spikes out."""
    w = cost.word_bytes
    steps = neuron.output_shape[0] if multistep and len(neuron.output_shape) > 1 else 1
    capacity = neuron.updates // max(steps, 1) * w
    row = LayerMemory(neuron.name, neuron.type, "neuron")
    row.potential_reads = row.potential_writes = neuron.updates
    row.output_writes = neuron.spikes
    row.potential_pj = cost.access_pj(row.potential_reads + row.potential_writes, capacity)
    row.inout_pj = cost.access_pj(row.output_writes, cost.fifo_messages * w)
    return row


@dataclass
class MemoryReport:
    """Memory-aware energy of one counted call: per layer / neuron rows and totals (pJ)."""

    rows: list[LayerMemory] = field(default_factory=list)
    cost: MemoryCostModel = LEMAIRE

    def _sum(self, key: str) -> float:
        return float(sum(getattr(r, key) for r in self.rows))

    def totals(self) -> dict[str, float]:
        keys = ("weight_reads", "potential_reads", "potential_writes", "input_reads", "output_writes", "addr_adds",
                "addr_muls", "weight_pj", "potential_pj", "inout_pj", "addressing_pj", "memory_pj", "total_pj")
        return {k: self._sum(k) for k in keys}

    @property
    def total_mj(self) -> float:
        """Memory + addressing energy (mJ), to add to the compute-only energy."""
        return self._sum("total_pj") * 1e-9


def memory_report(report: OperationReport, model: nn.Module | None = None, cost: MemoryCostModel = LEMAIRE) -> MemoryReport:
    """Memory-aware energy of a counted call (``model``: the counted model, to read weight sizes and kernels)."""
    modules = dict(model.named_modules()) if model is not None else {}
    rows = [layer_memory(layer, _module_for(layer.name, modules), cost) for layer in report.layers]
    rows += [neuron_memory(n, cost) for n in report.neurons]
    return MemoryReport(rows, cost)


__all__ = ["LEMAIRE", "LayerMemory", "MemoryCostModel", "MemoryReport", "layer_memory", "memory_report", "neuron_memory"]
