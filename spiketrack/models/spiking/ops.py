"""Small operator modules that exist so hooks can see them (the energy counter counts their operations)."""

from __future__ import annotations

import torch
from torch import nn


class SpikeMatMul(nn.Module):
    """``a @ b`` as a module: every spike x spike product of the student goes through one.

    Spike-driven attention multiplies spike tensors (no softmax); wrapping the product in a module lets
    forward hooks (``spiketrack.energy``) count its synaptic operations exactly.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a: [..., N, K], b: [..., K, M] -> [..., N, M]."""
        return a @ b
