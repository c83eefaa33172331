"""The one place that decides neuron type, step mode and backend of the spiking student.

Every spiking layer asks :func:`make_neuron` for its neuron; nothing else in the package builds
spikingjelly neurons. All neurons run in multi-step mode (``step_mode='m'``): they take
``[T, B, ...]`` tensors and keep a membrane state across the T timesteps of one call.

Two kinds (``NeuronConfig.kind``):

- ``lif``: binary spikes {0, 1} from spikingjelly's ``LIFNode`` (hard reset to 0, tau, threshold,
  detach_reset and surrogate gradient from the config).
- ``integer_lif``: integer-valued spikes with D = ``levels`` levels from spikingjelly's ``ILIFNode``
  (I-LIF, Luo et al., ECCV 2024: spike = round(clamp(v / threshold, 0, D)), soft reset). The count
  is divided by D, so outputs lie in {0, 1/D, ..., 1}; ``neuron.levels`` (D) lets the energy
  counter recover the integer count (``out * levels``) that it charges as synaptic events.

Backends. spikingjelly 2.0 has no ``backend=`` argument any more: ``functional.lif_multi_step``
dispatches on the tensor's device. On CPU it runs the Torch reference; on CUDA it picks a fused
implementation in the priority order native CUDA > Triton > Torch, overridable per process with the
environment variables ``SJ_LIF_CUDA_IMPLEMENTATION`` / ``SJ_ILIF_CUDA_IMPLEMENTATION``
(``auto|cuda|triton|torch``). The config's ``backend`` maps onto that:

- ``auto`` (default): spikingjelly's own choice, i.e. the accelerated kernels on CUDA and the Torch
  path on CPU.
- ``torch``: the Torch reference loop on every device (for debugging and for timing the CUDA
  path against it).
- ``cuda`` / ``triton``: request that CUDA implementation for the whole process (sets the
  spikingjelly selection for LIF and I-LIF; on CPU tensors the Torch path still runs).

The fused kernels only accept spikingjelly's built-in surrogates (Sigmoid, ATan, ...); other
surrogates fall back to the Torch reference inside spikingjelly.
"""

from __future__ import annotations

import os

import torch
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate as sj_surrogate
from torch import nn

from spiketrack.config import NeuronConfig
from spiketrack.errors import ConfigError

# spikingjelly surrogate classes selectable by name (lower case) in NeuronConfig.surrogate.
SURROGATES: dict[str, type] = {
    "sigmoid": sj_surrogate.Sigmoid,
    "atan": sj_surrogate.ATan,
    "piecewise_quadratic": sj_surrogate.PiecewiseQuadratic,
    "piecewise_exp": sj_surrogate.PiecewiseExp,
    "soft_sign": sj_surrogate.SoftSign,
    "super_spike": sj_surrogate.SuperSpike,
    "erf": sj_surrogate.Erf,
}

_ENV = {"lif": "SJ_LIF_CUDA_IMPLEMENTATION", "integer_lif": "SJ_ILIF_CUDA_IMPLEMENTATION"}


def _surrogate(cfg: NeuronConfig) -> nn.Module:
    name = cfg.surrogate.lower()
    if name not in SURROGATES:
        raise ConfigError(
            f"key 'model.neuron.surrogate': unknown surrogate {cfg.surrogate!r}; expected one of {sorted(SURROGATES)}"
        )
    return SURROGATES[name](alpha=cfg.surrogate_alpha)


def _request_cuda_implementation(kind: str, name: str) -> None:
    """Ask spikingjelly to use CUDA implementation ``name`` for neuron ``kind`` in this process."""
    os.environ[_ENV[kind]] = name
    # spikingjelly reads the variable when its ops package is imported; update an existing selection.
    if kind == "lif":
        from spikingjelly._ops.lif import _selection
    else:
        from spikingjelly._ops.ilif import _selection
    if _selection._requested != name:
        _selection._requested = name
        _selection._selections.clear()
        _selection._compiled_selections.clear()


class LIF(sj_neuron.LIFNode):
    """Binary multi-step LIF neuron. forward: [T, B, ...] -> spikes {0, 1} of the same shape."""

    levels: int = 1

    def __init__(self, cfg: NeuronConfig, torch_path: bool = False) -> None:
        super().__init__(
            tau=cfg.tau,
            decay_input=True,
            v_threshold=cfg.v_threshold,
            v_reset=0.0,
            surrogate_function=_surrogate(cfg),
            detach_reset=cfg.detach_reset,
            step_mode="m",
        )
        self.torch_path = torch_path

    def multi_step_forward(self, x_seq: torch.Tensor, *args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        """x_seq: [T, B, ...] membrane input -> [T, B, ...] spikes."""
        if not self.torch_path:
            return super().multi_step_forward(x_seq, *args, **kwargs)
        from spikingjelly._ops.lif.reference import multi_step

        (v,) = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")
        spikes, v, _ = multi_step(
            x_seq, v, self.tau, True, self.v_threshold, self.v_reset, self.surrogate_function, self.detach_reset
        )
        self._memories["v"] = v
        return spikes


class IntegerLIF(sj_neuron.ILIFNode):
    """Integer-valued multi-step I-LIF neuron normalised to {0, 1/D, ..., 1}.

    forward: [T, B, ...] -> [T, B, ...] values count / D, count in {0, ..., D}.
    """

    def __init__(self, cfg: NeuronConfig, torch_path: bool = False) -> None:
        if cfg.levels < 1:
            raise ConfigError(f"key 'model.neuron.levels': expected an integer >= 1, got {cfg.levels}")
        super().__init__(
            tau=cfg.tau,
            v_threshold=cfg.v_threshold,
            surrogate_function=sj_surrogate.MultiLevelSpikeCount(cfg.levels),
            detach_reset=cfg.detach_reset,
            step_mode="m",
        )
        self.levels = int(cfg.levels)
        self.torch_path = torch_path

    def multi_step_forward(self, x_seq: torch.Tensor, *args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        """x_seq: [T, B, ...] membrane input -> [T, B, ...] normalised spike counts."""
        if self.torch_path:
            from spikingjelly._ops.ilif.reference import multi_step

            (v,) = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")
            fn = self.surrogate_function
            lower, upper = _ilif_window(fn)
            counts, v, _ = multi_step(
                x_seq, v, self.tau, float(self.levels), lower, upper, self.v_threshold, self.detach_reset
            )
            self.v = v
        else:
            counts = super().multi_step_forward(x_seq, *args, **kwargs)
        return counts / self.levels


def _ilif_window(fn: sj_surrogate.MultiLevelSpikeCount) -> tuple[float, float]:
    """Rectangular surrogate window [lower, upper] of a MultiLevelSpikeCount (default [0, D])."""
    return float(getattr(fn, "grad_min", 0.0)), float(getattr(fn, "grad_max", fn.max_spike_count))


SpikingNeuron = (LIF, IntegerLIF)


def make_neuron(cfg: NeuronConfig) -> nn.Module:
    """A multi-step neuron as configured ([T, B, ...] -> [T, B, ...] values in {0, 1/D, ..., 1})."""
    if cfg.kind not in _ENV:
        raise ConfigError(f"key 'model.neuron.kind': expected 'lif' or 'integer_lif', got {cfg.kind!r}")
    if cfg.backend in ("cuda", "triton"):
        _request_cuda_implementation(cfg.kind, cfg.backend)
    torch_path = cfg.backend == "torch"
    if cfg.kind == "lif":
        if cfg.levels != 1:
            raise ConfigError(
                f"key 'model.neuron.levels': binary 'lif' neurons have 1 level, got {cfg.levels}; "
                "use kind 'integer_lif' for D > 1"
            )
        return LIF(cfg, torch_path)
    return IntegerLIF(cfg, torch_path)


def neuron_levels(cfg: NeuronConfig) -> int:
    """D, the number of non-zero spike levels (1 for binary LIF)."""
    return 1 if cfg.kind == "lif" else int(cfg.levels)


def implementation(cfg: NeuronConfig, device: torch.device) -> str:
    """Name of the implementation spikingjelly runs for this neuron on ``device`` (e.g. 'cuda', 'torch-reference')."""
    if cfg.backend == "torch":
        return "torch-reference"
    name = "lif" if cfg.kind == "lif" else "ilif"
    return str(sj_functional.neuron_implementation(name, device)["implementation"])


def reset_neurons(module: nn.Module) -> None:
    """Reset the membrane state of every spikingjelly neuron below ``module``."""
    sj_functional.reset_net(module)


__all__ = [
    "LIF",
    "IntegerLIF",
    "SURROGATES",
    "SpikingNeuron",
    "implementation",
    "make_neuron",
    "neuron_levels",
    "reset_neurons",
]
