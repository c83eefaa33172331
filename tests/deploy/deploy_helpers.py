"""Helpers of the deploy tests: small spiking students with binary LIF neurons and non-trivial BN statistics (so that neurons fire)."""

from __future__ import annotations

import torch
from torch import nn

from spiketrack.config import load_config
from spiketrack.models import build_model

QS_STUDENT = "configs/quickstart_student.yaml"


def lif_config(*extra: str):
    """The quickstart student config with binary LIF, T = 3 (plus ``extra`` overrides)."""
    return load_config(QS_STUDENT, ["model.neuron.kind=lif", "model.neuron.levels=1", "model.timesteps=3", *extra])


def excite(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters that make the untrained network fire (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 2 + 1)
            m.bias.data.copy_(torch.rand(n, generator=g))
    return model.eval()


def event_input(t: int, size: int, seed: int = 1, b: int = 1) -> torch.Tensor:
    """Normalised event bins log1p(Poisson counts) [T, B, 2, size, size]."""
    g = torch.Generator().manual_seed(seed)
    return torch.log1p(torch.poisson(torch.full((t, b, 2, size, size), 0.5), generator=g))


def lif_student() -> nn.Module:
    """The binary-LIF quickstart student (seed 0), excited."""
    torch.manual_seed(0)
    return excite(build_model(lif_config()))
