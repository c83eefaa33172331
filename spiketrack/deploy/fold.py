"""Batch-norm folding: BN after a conv/linear becomes that layer's weight scale and bias, for real.

In eval mode ``BN(W x) = gamma (W x - mean) / sqrt(var + eps) + beta = (s W) x + (beta - s mean)`` with
``s = gamma / sqrt(var + eps)`` per output channel. :func:`fold_batchnorm` returns a copy of the model
where every :class:`SeqConvBN` / :class:`SeqLinearBN` and every head conv + BN pair carries the folded
weight and bias and its BN is an ``nn.Identity``; the folded model computes the same function (the
tests check it produces the same spikes). BNs not preceded by a weight layer (the attention BN after the
spike x spike product) are left as they are.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from spiketrack.models.heads import SpikingBranch
from spiketrack.models.spiking.metaformer import SeqConvBN, SeqLinearBN


@torch.no_grad()
def bn_scale_shift(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BN: BN(y) = scale * y + shift, per channel."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("BN folding needs running statistics (track_running_stats=True)")
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


@torch.no_grad()
def folded_weight_bias(layer: nn.Conv2d | nn.Linear, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(layer(x))`` as one layer (bias zeros when ``bn`` is an Identity)."""
    w = layer.weight.detach()
    b = layer.bias.detach() if layer.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    if isinstance(bn, nn.Identity):
        return w.clone(), b.clone()
    scale, shift = bn_scale_shift(bn)
    view = (-1,) + (1,) * (w.dim() - 1)
    return w * scale.view(view), b * scale + shift


def _fold_into(layer: nn.Conv2d | nn.Linear, bn: nn.Module) -> nn.Module:
    """Give ``layer`` the folded weight and a bias; returns the Identity that replaces ``bn``."""
    w, b = folded_weight_bias(layer, bn)
    layer.weight = nn.Parameter(w)
    layer.bias = nn.Parameter(b)
    return nn.Identity()


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every conv/linear + BN pair folded into one layer with bias."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, SeqConvBN):
            module.bn = _fold_into(module.conv, module.bn)
        elif isinstance(module, SeqLinearBN):
            module.bn = _fold_into(module.linear, module.bn)
        elif isinstance(module, SpikingBranch):
            module.norms = nn.ModuleList(_fold_into(c, n) for c, n in zip(module.convs, module.norms, strict=True))
    return folded


__all__ = ["bn_scale_shift", "fold_batchnorm", "folded_weight_bias"]
