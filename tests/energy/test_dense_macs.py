"""Dense MAC counts against ultralytics-thop, and thop's behaviour on 5-D spiking inputs.

Finding (ultralytics-thop 2.2.x): its conv rule reads the input channel counted from the trailing end, so a
spikingjelly multi-step ``layer.Conv2d`` on ``[T, B, C, H, W]`` gets T x B x (per-sample MACs), i.e. the same
dense count as ours; it resolves rules through the class MRO, so the spikingjelly wrappers (subclasses of
``nn.Conv2d``/``nn.Linear``) are counted. thop also adds LayerNorm/BatchNorm/activation ops, which spiketrack
does not count (BN is folded; normalisation and activations are not synaptic operations), so totals are compared
per layer. thop has no notion of spikes: on a spiking network it reports dense MACs = our ``dense_mac``.
"""

from __future__ import annotations

import thop
import torch
from spikingjelly.activation_based import layer, neuron
from timm.models.vision_transformer import Block
from torch import nn

from spiketrack.energy.counter import count_operations


def thop_layers(model: nn.Module, *inputs: torch.Tensor) -> tuple[float, dict[str, float]]:
    total, _, info = thop.profile(model, inputs=inputs, verbose=False, ret_layer_info=True)
    flat: dict[str, float] = {}

    def walk(d: dict, prefix: str = "") -> None:
        for name, (ops, _, children) in d.items():
            flat[prefix + name] = ops
            walk(children, prefix + name + ".")

    walk(info)
    return total, flat


def test_small_convnet_matches_thop_per_layer():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=4),
        nn.Conv2d(8, 16, 1),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10),
    ).eval()
    x = torch.rand(2, 3, 16, 16)
    rep = count_operations(net, x)
    _, per_layer = thop_layers(net, x)
    assert [lay.name for lay in rep.layers] == ["0", "3", "4", "6"]
    for lay in rep.layers:
        assert lay.input_kind == "dense"
        assert lay.mac == per_layer[lay.name]
    # by hand: 2 x 8 x 8 x 8 outputs x 27; 2 x 8 x 64 x (2 x 9); 2 x 16 x 64 x 8; 2 x 10 x 1024
    assert [lay.mac for lay in rep.layers] == [2 * 512 * 27, 2 * 512 * 18, 2 * 1024 * 8, 2 * 10 * 1024]


def test_vit_block_matches_thop_and_counts_attention():
    torch.manual_seed(0)
    blk = Block(dim=192, num_heads=3).eval()  # timm ViT-Tiny block
    n_tokens = 16
    x = torch.rand(1, n_tokens, 192)
    rep = count_operations(blk, x)
    total, per_layer = thop_layers(blk, x)
    by_name = {lay.name: lay for lay in rep.layers}
    for name in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
        assert by_name[name].mac == per_layer[name]
    # fused attention (F.scaled_dot_product_attention): QK^T and AV, N*N*d MACs each per head = N*N*C in all
    assert by_name["attn.attn_qk"].mac == n_tokens * n_tokens * 192
    assert by_name["attn.attn_v"].mac == n_tokens * n_tokens * 192
    norms = per_layer["norm1"] + per_layer["norm2"]  # thop counts LayerNorm; spiketrack does not
    assert rep.total_mac == total - norms


def test_thop_on_multistep_5d_inputs_equals_dense_mac():
    net = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, step_mode="m"),
        neuron.LIFNode(step_mode="m"),
        layer.Conv2d(4, 4, 3, stride=2, padding=1, step_mode="m"),
        neuron.LIFNode(step_mode="m"),
        layer.Flatten(start_dim=1, step_mode="m"),
        layer.Linear(4 * 9, 5, step_mode="m"),
    )
    T, B = 3, 2
    x = torch.rand(T, B, 2, 6, 6)
    rep = count_operations(net, x, timesteps=T)
    _, per_layer = thop_layers(net, x)
    assert [lay.dense_mac for lay in rep.layers] == [per_layer["0"], per_layer["2"], per_layer["5"]]
    assert rep.layers[0].dense_mac == T * B * 4 * 36 * 2 * 9


def test_einsum_and_functional_linear():
    class Fn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 4))
            self.lif = neuron.IFNode(v_threshold=0.5)

        def forward(self, x, y):
            s = self.lif(x)
            return torch.nn.functional.linear(s, self.w), torch.einsum("bij,bjk->bik", y, y)

    x = torch.tensor([[1.0, 0, 1, 1]])
    y = torch.rand(2, 3, 3)
    rep = count_operations(Fn(), x, y)
    lin, ein = rep.layers
    assert (lin.input_kind, lin.sop) == ("spike", 3 * 3)
    assert (ein.input_kind, ein.mac) == ("dense", 2 * 3 * 3 * 3)
