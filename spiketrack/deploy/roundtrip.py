"""Round trip: run an exported NIR graph in an independent NIR consumer (snnTorch) and compare spike counts.

:func:`spiketrack_spike_counts` runs the exported subgraph in spiketrack (spikingjelly neurons, unfolded
BN) and :func:`snntorch_spike_counts` runs the graph read back from disk through
``snntorch.import_nir.import_from_nir`` (nirtorch's graph executor, snnTorch ``Leaky`` neurons), one call
per timestep; both return the total spike count of every LIF layer by NIR node name.

snnTorch's importer writes LIF as ``Leaky(beta = 1 - dt / tau_nir)`` and, since its Leaky adds the input
unscaled, divides the threshold by ``R dt / tau_nir`` = 1/tau (its ``hack_w_scale``): its membrane is tau
times ours, with the same spikes.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from spiketrack.models.spiking.neurons import SpikingNeuron, reset_neurons


def _neuron_hooks(modules: dict[str, nn.Module], counts: dict[str, float]) -> list[Any]:
    def hook(name: str) -> Callable:
        def record(_m: nn.Module, _a: Any, out: Any) -> None:
            spk = out[0] if isinstance(out, tuple) else out
            counts[name] = counts.get(name, 0.0) + float(spk.detach().double().sum())
        return record
    return [m.register_forward_hook(hook(n)) for n, m in modules.items()]


@torch.no_grad()
def spiketrack_spike_counts(
    model: nn.Module, x: torch.Tensor, neurons: list[str], kernel: torch.Tensor | None = None
) -> tuple[dict[str, float], torch.Tensor]:
    """Spike count per LIF layer (NIR node names) and the subgraph output, running ``model`` in spiketrack.

    x: [T, B, C, H, W] normalised input. Runs ``model.nir_forward(x, kernel)`` (the deployable student, which
    exports whole; ``kernel``: the template kernel the graph was exported with) or the backbone's conv stages
    (Spiking MetaFormer students).
    """
    model = model.eval()
    named = dict(model.named_modules())
    missing = [n for n in neurons if n not in named or not isinstance(named[n], SpikingNeuron)]
    if missing:
        raise KeyError(f"NIR neuron nodes without a spiketrack neuron module: {missing[:5]}")
    counts: dict[str, float] = {}
    handles = _neuron_hooks({n: named[n] for n in neurons}, counts)
    try:
        reset_neurons(model)
        if hasattr(model, "nir_forward"):
            out = model.nir_forward(x, kernel)
        else:
            out = getattr(model, "backbone", model).conv_features(x)
    finally:
        for h in handles:
            h.remove()
    return counts, out


def import_snntorch(graph: Any) -> nn.Module:
    """snnTorch's module for a NIR graph (its importer's diagnostics are silenced)."""
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(graph)


@torch.no_grad()
def snntorch_spike_counts(graph: Any, x: torch.Tensor, neurons: list[str]) -> tuple[dict[str, float], torch.Tensor]:
    """Spike count per LIF layer and the output [T, B, ...] running ``graph`` in snnTorch, one call per timestep."""
    import snntorch

    net = import_snntorch(graph)
    named = {n: m for n, m in net.named_modules() if isinstance(m, snntorch.SpikingNeuron)}
    sanitized = {n: n.replace(".", "_") for n in neurons}
    missing = [n for n, s in sanitized.items() if s not in named]
    if missing:
        raise KeyError(f"snnTorch graph lacks LIF layers {missing[:5]}")
    counts: dict[str, float] = {}
    handles = _neuron_hooks({n: named[s] for n, s in sanitized.items()}, counts)
    try:
        for m in named.values():
            m.reset_mem()
        outs, state = [], None
        for xt in x:
            out = net(xt) if state is None else net(xt, state)
            out, state = out if isinstance(out, tuple) else (out, None)
            outs.append(out)
    finally:
        for h in handles:
            h.remove()
    return counts, torch.stack(outs)


__all__ = ["import_snntorch", "snntorch_spike_counts", "spiketrack_spike_counts"]
