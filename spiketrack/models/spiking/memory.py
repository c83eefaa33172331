"""Memory-retrieval module: one-way template -> search information flow with a compact per-head memory.

Template tokens are turned into spike keys K and values V; their product M = K^T V ([heads, d, d] per
timestep, an integer spike count) is the template memory. Its size does not depend on the number of
template tokens, so it is computed once per template and cached by the tracker. The search branch
queries it: R = Q M (spike query x count memory), refines the query once or more from what it retrieved
(q <- q + W r, then retrieve again), and adds the projected cue to its own (analog) features.
Several templates (the initial one plus updates) are memory slots: each slot is queried with the same Q
and the retrieved cues are mixed by a learned, content-dependent gate (softmax over slots).
The search branch never writes to the memory; the template never sees the search crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from spiketrack.models.spiking.metaformer import SeqLinearBN
from spiketrack.models.spiking.ops import SpikeMatMul

if TYPE_CHECKING:
    from spiketrack.models.spiking.neurons import NeuronFactory


@dataclass
class TemplateMemory:
    """Cached template memory: per retrieval point, slots [T, B, S, h, d, d] and gate weights [B, S, h].

    Opaque to callers (the tracker stores it and hands it back to ``track``); ``num_tokens`` is the
    template token count used to normalise retrieval.
    """

    slots: list[torch.Tensor]
    weights: list[torch.Tensor]
    num_tokens: int
    kernel: torch.Tensor | None = None  # [B, C, k, k] template correlation kernel (students with ``xcorr``)
    shallow_kernel: torch.Tensor | None = None  # [B, C1, k1, k1] shallow-level kernel (``xcorr_shallow``)

    @property
    def num_slots(self) -> int:
        return int(self.slots[0].shape[2]) if self.slots else 0

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "TemplateMemory":
        def opt(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else fn(x)

        return TemplateMemory([fn(s) for s in self.slots], [fn(w) for w in self.weights], self.num_tokens,
                              opt(self.kernel), opt(self.shallow_kernel))

    def detach(self) -> "TemplateMemory":
        return self._map(lambda x: x.detach())

    def to(self, device: torch.device | str) -> "TemplateMemory":
        return self._map(lambda x: x.to(device))


class MemoryRetrieval(nn.Module):
    """Builds a template memory and retrieves from it for the search tokens at one point of the backbone."""

    def __init__(self, dim: int, heads: int, neuron: NeuronFactory, refine_steps: int = 1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        # template side: keys and values
        self.n_template = neuron()
        self.k, self.v = SeqLinearBN(dim, dim), SeqLinearBN(dim, dim)
        self.nk, self.nv = neuron(), neuron()
        self.memory_matmul = SpikeMatMul()  # K^T V: spike x spike
        # search side: query, retrieval, refinement, output
        self.n_search = neuron()
        self.q = SeqLinearBN(dim, dim)
        steps = refine_steps + 1
        self.nq = nn.ModuleList(neuron() for _ in range(steps))
        self.retrieve_matmul = nn.ModuleList(SpikeMatMul() for _ in range(steps))  # Q M: spike x count
        self.retrieve_bn = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(steps))
        self.nr = nn.ModuleList(neuron() for _ in range(steps))
        self.refine = nn.ModuleList(SeqLinearBN(dim, dim) for _ in range(refine_steps))
        self.out = SeqLinearBN(dim, dim)
        # gate over memory slots: per-head score from the slot's mean memory row
        self.gate = nn.Linear(self.head_dim, 1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, c = x.shape
        return x.view(t, b, n, self.heads, self.head_dim).transpose(2, 3)  # [T, B, h, N, d]

    def build(self, template: torch.Tensor) -> torch.Tensor:
        """template tokens [T, B, Nt, C] -> memory [T, B, h, d, d] = K^T V (spike counts)."""
        s = self.n_template(template)
        k = self._split(self.nk(self.k(s)))
        v = self._split(self.nv(self.v(s)))
        return self.memory_matmul(k.transpose(-2, -1), v)

    def gate_weights(self, slots: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """slots [T, B, S, h, d, d] -> gate weights [B, S, h] (softmax over slots S)."""
        descriptor = slots.mean(dim=(0, 4)) / num_tokens  # [B, S, h, d]: mean memory row per head
        return self.gate(descriptor).squeeze(-1).softmax(dim=1)

    def _retrieve(self, step: int, q: torch.Tensor, memory: TemplateMemory, index: int) -> torch.Tensor:
        """Spike query [T, B, h, Ns, d] -> retrieval spikes [T, B, Ns, C] (gated over slots)."""
        slots, weights = memory.slots[index], memory.weights[index]
        r = self.retrieve_matmul[step](q.unsqueeze(2), slots)  # [T, B, S, h, Ns, d]
        r = (r * weights[None, :, :, :, None, None]).sum(dim=2) / memory.num_tokens
        t, b, h, n, d = r.shape
        r = r.transpose(2, 3).reshape(t, b, n, h * d)
        r = self.retrieve_bn[step](r.flatten(0, 2)).view(t, b, n, h * d)
        return self.nr[step](r)

    def forward(self, search: torch.Tensor, memory: TemplateMemory, index: int) -> torch.Tensor:
        """search tokens [T, B, Ns, C] + memory point ``index`` -> search tokens [T, B, Ns, C] with the cue added."""
        q_in = self.q(self.n_search(search))  # analog query membrane input
        r = self._retrieve(0, self._split(self.nq[0](q_in)), memory, index)
        for step, refine in enumerate(self.refine, start=1):
            q_in = q_in + refine(r)  # recurrent refinement of the query from the retrieved content
            r = self._retrieve(step, self._split(self.nq[step](q_in)), memory, index)
        return search + self.out(r)


__all__ = ["MemoryRetrieval", "TemplateMemory"]
