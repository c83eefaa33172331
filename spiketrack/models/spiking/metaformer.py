"""Spiking MetaFormer backbone: spiking conv stages to stride 16, then spike-driven transformer stages.

Layout after the Spike-driven Transformer V3 / E-SpikeFormer design (Yao et al., TPAMI 2025) used by
SDTrack: membrane shortcuts (residuals added to the analog pre-neuron values), a neuron at the input of
every weight layer so all weight layers except the encoding conv receive spikes, and spike-driven
self-attention whose products are spike x spike (no softmax). Tensors are ``[T, B, C, H, W]`` in the
conv stages and tokens ``[T, B, N, C]`` in the transformer stages; values between blocks are analog
membrane inputs, neurons sit inside the blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from spiketrack.models.spiking.ops import SpikeMatMul

if TYPE_CHECKING:
    from spiketrack.models.spiking.neurons import NeuronFactory

ATTN_SCALE = 0.125  # fixed scale of spike-driven self-attention (Spike-driven Transformer V2, Yao et al., ICLR 2024)


class SeqConvBN(nn.Module):
    """Conv2d + BN applied to every timestep: [T, B, Cin, H, W] -> [T, B, Cout, H', W']."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, Cin, H, W] -> [T, B, Cout, H', W']."""
        t, b = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return y.view(t, b, *y.shape[1:])


class SeqLinearBN(nn.Module):
    """Linear + BN over the channel of tokens: [T, B, N, Cin] -> [T, B, N, Cout]."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, N, Cin] -> [T, B, N, Cout]."""
        y = self.linear(x)
        return self.bn(y.flatten(0, 2)).view(y.shape)


class SpikingDownsample(nn.Module):
    """(neuron ->) strided conv + BN. The first one is the encoding layer and takes analog input."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, neuron: NeuronFactory | None) -> None:
        super().__init__()
        self.neuron = neuron() if neuron is not None else None
        self.conv = SeqConvBN(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, Cin, H, W] -> [T, B, Cout, H/stride, W/stride]."""
        return self.conv(self.neuron(x) if self.neuron is not None else x)


class SepConv(nn.Module):
    """MetaFormer separable-conv token mixer: pw expand -> depthwise 7x7 -> pw project, a neuron before each."""

    def __init__(self, dim: int, neuron: NeuronFactory, expansion: int = 2, kernel: int = 7) -> None:
        super().__init__()
        hidden = dim * expansion
        self.n1, self.pw1 = neuron(), SeqConvBN(dim, hidden, 1)
        self.n2, self.dw = neuron(), SeqConvBN(hidden, hidden, kernel, groups=hidden)
        self.n3, self.pw2 = neuron(), SeqConvBN(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, H, W] -> [T, B, C, H, W]."""
        return self.pw2(self.n3(self.dw(self.n2(self.pw1(self.n1(x))))))


class ChannelConv(nn.Module):
    """Conv channel mixer: neuron -> conv3x3 (C -> rC) -> neuron -> conv3x3 (rC -> C)."""

    def __init__(self, dim: int, neuron: NeuronFactory, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.n1, self.c1 = neuron(), SeqConvBN(dim, hidden, 3)
        self.n2, self.c2 = neuron(), SeqConvBN(hidden, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, H, W] -> [T, B, C, H, W]."""
        return self.c2(self.n2(self.c1(self.n1(x))))


class SpikingConvBlock(nn.Module):
    """x + SepConv(x), then + ChannelConv(x) (membrane shortcuts)."""

    def __init__(self, dim: int, neuron: NeuronFactory, ratio: float, kernel: int = 7) -> None:
        super().__init__()
        self.mixer = SepConv(dim, neuron, kernel=kernel)
        self.mlp = ChannelConv(dim, neuron, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, H, W] -> [T, B, C, H, W]."""
        x = x + self.mixer(x)
        return x + self.mlp(x)


class SpikeDrivenSelfAttention(nn.Module):
    """Spike-driven self-attention: Q (K^T V) with spike Q, K, V; no softmax.

    Both products go through :class:`SpikeMatMul` (K^T V: spike x spike; Q (K^T V): spike x integer
    count), so the energy counter sees them. The N x N similarity Q K^T is computed only on request.
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronFactory) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.n_in = neuron()
        self.q, self.k, self.v = SeqLinearBN(dim, dim), SeqLinearBN(dim, dim), SeqLinearBN(dim, dim)
        self.nq, self.nk, self.nv = neuron(), neuron(), neuron()
        self.kv_matmul = SpikeMatMul()
        self.qkv_matmul = SpikeMatMul()
        self.sim_matmul = SpikeMatMul()  # only used when similarity maps are requested
        self.attn_bn = nn.BatchNorm1d(dim)
        self.n_attn = neuron()
        self.proj = SeqLinearBN(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, c = x.shape
        return x.view(t, b, n, self.heads, c // self.heads).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, x: torch.Tensor, need_similarity: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [T, B, N, C] -> ([T, B, N, C], similarity [B, h, N, N] averaged over T, or None)."""
        t, b, n, c = x.shape
        s = self.n_in(x)
        q = self._split(self.nq(self.q(s)))
        k = self._split(self.nk(self.k(s)))
        v = self._split(self.nv(self.v(s)))
        kv = self.kv_matmul(k.transpose(-2, -1), v)  # [T, B, h, d, d]
        y = self.qkv_matmul(q, kv) * ATTN_SCALE  # [T, B, h, N, d]
        y = y.transpose(2, 3).reshape(t, b, n, c)
        y = self.attn_bn(y.flatten(0, 2)).view(t, b, n, c)
        out = self.proj(self.n_attn(y))
        sim = self.sim_matmul(q, k.transpose(-2, -1)).mean(dim=0) if need_similarity else None
        return out, sim


class SpikingMLP(nn.Module):
    """Token MLP: neuron -> linear (C -> rC) -> neuron -> linear (rC -> C), each with BN."""

    def __init__(self, dim: int, neuron: NeuronFactory, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.n1, self.fc1 = neuron(), SeqLinearBN(dim, hidden)
        self.n2, self.fc2 = neuron(), SeqLinearBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, N, C] -> [T, B, N, C]."""
        return self.fc2(self.n2(self.fc1(self.n1(x))))


class SpikingTransformerBlock(nn.Module):
    """x + SDSA(x), then + MLP(x) (membrane shortcuts)."""

    def __init__(self, dim: int, heads: int, neuron: NeuronFactory, ratio: float) -> None:
        super().__init__()
        self.attn = SpikeDrivenSelfAttention(dim, heads, neuron)
        self.mlp = SpikingMLP(dim, neuron, ratio)

    def forward(self, x: torch.Tensor, need_similarity: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [T, B, N, C] -> ([T, B, N, C], similarity [B, h, N, N] or None)."""
        a, sim = self.attn(x, need_similarity)
        x = x + a
        return x + self.mlp(x), sim


class TokenProjection(nn.Module):
    """Stage transition at constant stride: neuron -> linear + BN (C_in -> C_out) on tokens."""

    def __init__(self, cin: int, cout: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.neuron = neuron()
        self.proj = SeqLinearBN(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, N, Cin] -> [T, B, N, Cout]."""
        return self.proj(self.neuron(x))


class SpikingMetaFormer(nn.Module):
    """Conv stages (stride 2 stem, then stride 4, 8, 16) and two transformer stages at stride 16.

    dims: 4 widths [stride-4 conv, stride-8 conv, transformer stage 3, transformer stage 4];
    sepconv_kernel: depthwise kernel of the conv stages' token mixer (7 as in MetaFormer/SDT-V3);
    stem_kernel: kernel of the encoding conv (7 as in SDT-V3). It is the only dense-input (MAC) layer at
    full crop resolution, run T times, so it dominates a small student's energy: 3 costs 49/9 less.
    The backbone exposes its parts so the student can interleave memory retrieval between blocks:
    ``conv_forward`` (pixels -> stride-16 tokens) and ``blocks`` / ``transitions``.
    """

    def __init__(
        self,
        dims: list[int],
        conv_depths: list[int],
        depths: list[int],
        heads: int,
        mlp_ratio: float,
        conv_ratio: float,
        neuron: NeuronFactory,
        in_chans: int = 2,
        sepconv_kernel: int = 7,
        stem_kernel: int = 7,
    ) -> None:
        super().__init__()
        if len(dims) != 4 or len(conv_depths) != 2 or len(depths) != 2:
            raise ValueError("dims needs 4 widths, conv_depths 2 and depths 2 entries")
        d0, d1, d2, d3 = dims
        self.dims = list(dims)
        # encoding layer (analog input, MACs): stride 2; then stride-2 downsamplings to 4, 8, 16
        self.stem = SpikingDownsample(in_chans, d0 // 2, stem_kernel, 2, None)
        self.down1 = SpikingDownsample(d0 // 2, d0, 3, 2, neuron)
        self.stage1 = nn.ModuleList(SpikingConvBlock(d0, neuron, conv_ratio, sepconv_kernel) for _ in range(conv_depths[0]))
        self.down2 = SpikingDownsample(d0, d1, 3, 2, neuron)
        self.stage2 = nn.ModuleList(SpikingConvBlock(d1, neuron, conv_ratio, sepconv_kernel) for _ in range(conv_depths[1]))
        self.down3 = SpikingDownsample(d1, d2, 3, 2, neuron)
        blocks = [SpikingTransformerBlock(d2, heads, neuron, mlp_ratio) for _ in range(depths[0])]
        blocks += [SpikingTransformerBlock(d3, heads, neuron, mlp_ratio) for _ in range(depths[1])]
        self.blocks = nn.ModuleList(blocks)
        # block index -> projection applied before it (stage 3 -> stage 4 width change)
        self.transitions = nn.ModuleDict({str(depths[0]): TokenProjection(d2, d3, neuron)})
        self.block_dims = [d2] * depths[0] + [d3] * depths[1]
        self.out_dim = d3

    def conv_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [T, B, Cin, H, W] (normalised input) -> conv-stage output [T, B, dims[2], H/16, W/16] and the stride-8
        stage's output [T, B, dims[1], H/8, W/8] (both analog membrane inputs)."""
        x = self.down1(self.stem(x))
        for blk in self.stage1:
            x = blk(x)
        x = self.down2(x)
        for blk in self.stage2:
            x = blk(x)
        return self.down3(x), x

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, Cin, H, W] (normalised input) -> conv-stage output [T, B, dims[2], H/16, W/16] (analog)."""
        return self.conv_stages(x)[0]

    def conv_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """x: [T, B, Cin, H, W] (normalised input) -> tokens [T, B, (H/16)*(W/16), dims[2]] and the (H/16, W/16) grid."""
        tokens, grid, _ = self.conv_tokens(x)
        return tokens, grid

    def conv_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor]:
        """:meth:`conv_forward` plus the stride-8 stage's output [T, B, dims[1], H/8, W/8] (shallow correlation)."""
        x, shallow = self.conv_stages(x)
        t, b, c, h, w = x.shape
        return x.flatten(3).transpose(2, 3), (h, w), shallow

    def block_forward(
        self, i: int, x: torch.Tensor, need_similarity: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Transformer block ``i`` (with the stage transition before it, if any): [T, B, N, C] -> [T, B, N, C']."""
        key = str(i)
        if key in self.transitions:
            x = self.transitions[key](x)
        return self.blocks[i](x, need_similarity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, Cin, H, W] -> tokens [T, B, N, dims[3]] (no memory retrieval; used for profiling)."""
        tokens, _ = self.conv_forward(x)
        for i in range(len(self.blocks)):
            tokens, _ = self.block_forward(i, tokens)
        return tokens


__all__ = [
    "ATTN_SCALE",
    "SeqConvBN",
    "SeqLinearBN",
    "SepConv",
    "SpikeDrivenSelfAttention",
    "SpikingConvBlock",
    "SpikingMLP",
    "SpikingMetaFormer",
    "SpikingTransformerBlock",
    "TokenProjection",
]
