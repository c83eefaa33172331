"""Memory-retrieval module: one-way template -> search information flow with a compact per-head memory.

Template tokens are turned into spike keys K and values V; their product M = K^T V ([heads, d, d] per
timestep, an integer spike count) is the template memory. Its size does not depend on the number of
template tokens, so it is computed once per template and cached by the tracker. The search branch
queries it: R = Q M (spike query x count memory), refines the query once or more from what it retrieved
(q <- q + W r, then retrieve again), and adds the projected cue to its own (analog) features.
Several templates (the initial one plus updates) are memory slots: each slot is queried with the same Q
and the retrieved cues are mixed by a learned, content-dependent gate (softmax over slots).
The search branch never writes to the memory; the template never sees the search crop.

Stacked templates (SpikeTrack, Zhang et al., arXiv:2602.23963; facts from its public code): the template branch
runs T_t steps, one per stacked template crop, and the search branch one step. The memory then keeps one
K^T V per template step, the one-step query retrieves from each of them (T_t retrieved steps), and
:class:`StepGate` fuses those steps into one (a softmax over the steps per channel, scored from the channel's
spatial map, as SpikeTrack's channel-wise gate); :class:`StepPositions` are the learned position embeddings
that tell the template steps (and the search) apart.
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
    inputs: torch.Tensor | None = None  # stacked templates: the template crops [T_t, B, 2, H, W] it was encoded from
    input_kernel: torch.Tensor | None = None  # [B, 2, k0, k0] input-level NCC kernel (``xcorr_input``)

    @property
    def num_slots(self) -> int:
        return int(self.slots[0].shape[2]) if self.slots else 0

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "TemplateMemory":
        def opt(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else fn(x)

        return TemplateMemory([fn(s) for s in self.slots], [fn(w) for w in self.weights], self.num_tokens,
                              opt(self.kernel), opt(self.shallow_kernel), opt(self.inputs), opt(self.input_kernel))

    def detach(self) -> "TemplateMemory":
        return self._map(lambda x: x.detach())

    def to(self, device: torch.device | str) -> "TemplateMemory":
        return self._map(lambda x: x.to(device))


class StepPositions(nn.Module):
    """Learned position embeddings per template step and for the search (zero at start, as SpikeTrack's).

    template tokens [T_t, B, Nt, C] + ``template[t]`` for step t; search tokens [T, B, Ns, C] + ``search``.
    """

    def __init__(self, steps: int, template_tokens: int, search_tokens: int, dim: int) -> None:
        super().__init__()
        self.template = nn.Parameter(torch.zeros(steps, template_tokens, dim))
        self.search = nn.Parameter(torch.zeros(search_tokens, dim))

    def forward(self, tokens: torch.Tensor, template: bool) -> torch.Tensor:
        """tokens [T, B, N, C] -> the same with the embeddings added (template: T must be the stacked steps)."""
        if template:
            if tokens.shape[0] != self.template.shape[0] or tokens.shape[2] != self.template.shape[1]:
                raise ValueError(f"template tokens {tuple(tokens.shape)}: expected {self.template.shape[0]} steps of "
                                 f"{self.template.shape[1]} tokens (model.template_timesteps, data.template_size)")
            return tokens + self.template[:, None]
        if tokens.shape[2] != self.search.shape[0]:
            raise ValueError(f"search tokens {tuple(tokens.shape)}: expected {self.search.shape[0]} tokens "
                             "(data.search_size)")
        return tokens + self.search


class StepGate(nn.Module):
    """Fuses T retrieved steps into one: per (sample, channel), a score per step from that channel's spatial map
    (tokens -> tokens/2 -> neuron -> 1, the neuron running over the steps), softmax over the steps, weighted sum.

    x [T, B, N, C] -> [1, B, N, C] (analog; a neuron follows in :class:`MemoryRetrieval`). SpikeTrack's channel-wise
    gate (``GateModule(mode='channel')``), as a pair of linears over the token axis.
    """

    def __init__(self, tokens: int, neuron: NeuronFactory) -> None:
        super().__init__()
        hidden = max(tokens // 2, 1)
        self.fc1 = nn.Linear(tokens, hidden)
        self.neuron = neuron()
        self.fc2 = nn.Linear(hidden, 1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, N, C] -> gate weights [T, B, 1, C] (softmax over T)."""
        t, b, n, c = x.shape
        maps = x.transpose(2, 3).reshape(t, b * c, n)  # each channel's spatial map, per step
        scores = self.fc2(self.neuron(self.fc1(maps))).view(t, b, 1, c)
        return scores.softmax(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, N, C] -> the steps' gated sum [1, B, N, C]."""
        return (x * self.weights(x)).sum(dim=0, keepdim=True)


class MemoryRetrieval(nn.Module):
    """Builds a template memory and retrieves from it for the search tokens at one point of the backbone."""

    def __init__(self, dim: int, heads: int, neuron: NeuronFactory, refine_steps: int = 1,
                 search_tokens: int | None = None) -> None:
        """``search_tokens``: stacked templates (one search step retrieves T_t steps, fused by a :class:`StepGate`
        over that many tokens); None: the memory has one step per search step (or one, broadcast)."""
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
        # stacked templates: gate over the retrieved template steps, then a neuron (SpikeTrack's gate + gate_spike)
        self.step_gate = StepGate(search_tokens, neuron) if search_tokens else None
        self.n_step = neuron() if search_tokens else None

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
        if r.shape[0] != search.shape[0]:  # stacked templates: T_t retrieved steps for one search step
            if self.step_gate is None or self.n_step is None:
                raise ValueError(f"memory of {r.shape[0]} steps for a search of {search.shape[0]}: this retrieval "
                                 "has no gate over template steps (model.template_steps: templates)")
            r = self.n_step(self.step_gate(r))
        return search + self.out(r)


__all__ = ["MemoryRetrieval", "StepGate", "StepPositions", "TemplateMemory"]
