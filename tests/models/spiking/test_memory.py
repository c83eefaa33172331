"""Memory retrieval: the memory is the spike count K^T V per head; the gate is a softmax over slots."""

from __future__ import annotations

import torch

from spiketrack.config import NeuronConfig
from spiketrack.models.spiking.memory import MemoryRetrieval, TemplateMemory
from spiketrack.models.spiking.neurons import neuron_factory


def test_memory_is_the_spike_product_of_keys_and_values() -> None:
    torch.manual_seed(0)
    mod = MemoryRetrieval(16, 4, neuron_factory(NeuronConfig())).train()
    seen: dict[str, torch.Tensor] = {}
    mod.nk.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o))
    mod.nv.register_forward_hook(lambda m, i, o: seen.__setitem__("v", o))
    memory = mod.build(torch.randn(3, 2, 10, 16) * 3)  # [T, B, Nt, C]
    assert memory.shape == (3, 2, 4, 4, 4)  # [T, B, heads, d, d]
    k = seen["k"].view(3, 2, 10, 4, 4).transpose(2, 3)
    v = seen["v"].view(3, 2, 10, 4, 4).transpose(2, 3)
    assert torch.isin(k, torch.tensor([0.0, 1.0])).all() and k.sum() > 0
    expected = torch.einsum("tbhnd,tbhne->tbhde", k, v)  # number of tokens where key d and value e both fire
    torch.testing.assert_close(memory, expected)
    assert torch.equal(memory, memory.round())


def test_gate_weights_softmax_over_slots_and_retrieval_shapes() -> None:
    torch.manual_seed(0)
    mod = MemoryRetrieval(16, 4, neuron_factory(NeuronConfig()), refine_steps=2).eval()
    slots = torch.stack([mod.build(torch.randn(2, 1, 6, 16) * 3) for _ in range(3)], dim=2)  # [T, B, S, h, d, d]
    w = mod.gate_weights(slots, num_tokens=6)
    assert w.shape == (1, 3, 4)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(1, 4))
    memory = TemplateMemory([slots], [w], num_tokens=6)
    search = torch.randn(2, 1, 9, 16)
    out = mod(search, memory, 0)
    assert out.shape == search.shape
    assert len(mod.refine) == 2 and len(mod.retrieve_matmul) == 3
