"""Weight quantisation for deployment: symmetric per-output-channel fake quantisation of the BN-folded model.

``w_q = clamp(round(w / s), -q, q) * s`` with ``q = 2^(bits-1) - 1`` and ``s = max|w_c| / q`` per output channel
c, applied to every conv / linear weight after BN folding (what a chip stores). Biases (folded BN shifts) stay in
floating point: on the chips profiled they are per-neuron bias currents, not synaptic weights. The returned
model is a copy, runs like the original (same call protocol) and can be tracked and evaluated as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from spiketrack.deploy.fold import fold_batchnorm


@torch.no_grad()
def fake_quantize(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel fake quantisation of ``weight`` [C_out, ...] to ``bits`` bits."""
    if bits < 2:
        raise ValueError(f"bits must be >= 2 for a symmetric code, got {bits}")
    q = 2 ** (bits - 1) - 1
    flat = weight.reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(weight.dtype).tiny) / q
    codes = torch.clamp(torch.round(flat / scale[:, None]), -q, q)
    return (codes * scale[:, None]).reshape(weight.shape)


@torch.no_grad()
def quantize_weights(model: nn.Module, bits: int, fold: bool = True) -> nn.Module:
    """A copy of ``model`` (BN folded unless ``fold=False``) whose conv/linear weights are fake-quantised to ``bits``."""
    out = fold_batchnorm(model) if fold else copy.deepcopy(model).eval()
    for m in out.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
            m.weight.copy_(fake_quantize(m.weight, bits))
    return out


__all__ = ["fake_quantize", "quantize_weights"]
