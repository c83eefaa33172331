"""Spiking MetaFormer: stride 16, and every SpikeMatMul multiplies spikes (no softmax anywhere)."""

from __future__ import annotations

import torch

from spiketrack.config import NeuronConfig
from spiketrack.models.spiking.metaformer import SpikingMetaFormer
from spiketrack.models.spiking.neurons import neuron_factory, reset_neurons
from spiketrack.models.spiking.ops import SpikeMatMul


def test_stride_16_tokens_and_spike_products() -> None:
    torch.manual_seed(0)
    net = SpikingMetaFormer([8, 16, 32, 48], [1, 1], [2, 1], 4, 2.0, 2.0, neuron_factory(NeuronConfig(kind="integer_lif", levels=2)))
    net.train()
    operands: list[tuple[torch.Tensor, torch.Tensor]] = []
    for m in net.modules():
        if isinstance(m, SpikeMatMul):
            m.register_forward_hook(lambda mod, i, o: operands.append((i[0], i[1])))
    x = torch.poisson(torch.ones(2, 1, 2, 64, 80))
    reset_neurons(net)
    tokens, grid = net.conv_forward(x)
    assert grid == (4, 5) and tokens.shape == (2, 1, 20, 32)
    reset_neurons(net)
    out = net(x)
    assert out.shape == (2, 1, 20, 48)
    grid_values = torch.tensor([0.0, 0.5, 1.0])
    assert len(operands) == 2 * 3  # K^T V and Q (K^T V) per block
    for a, b in operands[0::2]:  # K^T V: both spikes
        assert torch.isin(a, grid_values).all() and torch.isin(b, grid_values).all()
    for a, _ in operands[1::2]:  # Q x (K^T V): Q spikes
        assert torch.isin(a, grid_values).all()
