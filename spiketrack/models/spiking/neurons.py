"""The one place that decides neuron type, step mode and backend of the spiking student.

:func:`neuron_factory` turns ``cfg.model.neuron`` into a *neuron factory*: a callable that returns a fresh
multi-step neuron module each time it is called (spikingjelly's ``spiking_neuron=`` habit, timm's
``act_layer=``). :func:`spiketrack.models.build_model` builds it once and hands it to the model, whose layers call
it for every neuron; nothing else in the package builds spikingjelly neurons. All neurons run in multi-step mode
(``step_mode='m'``): they take ``[T, B, ...]`` tensors and keep a membrane state across the T timesteps of one call.

Kinds (``NeuronConfig.kind``), one row each in :data:`NEURONS` (class, levels rule, spikingjelly op):

- ``lif``: binary spikes {0, 1} from spikingjelly's ``LIFNode`` (hard reset to 0, tau, threshold,
  detach_reset and surrogate gradient from the config); D = 1.
- ``integer_lif``: integer-valued spikes with D = ``levels`` levels from spikingjelly's ``ILIFNode``
  (I-LIF, Luo et al., ECCV 2024: spike = round(clamp(v / threshold, 0, D)), soft reset). The count
  is divided by D, so outputs lie in {0, 1/D, ..., 1}.

Every neuron module carries ``levels`` (D), so the energy counter recovers the integer count (``out * levels``)
that it charges as synaptic events.

Backends: ``cfg.backend`` is a process-wide choice of spikingjelly's CUDA implementation, made through its
environment variables before spikingjelly is imported (:mod:`spiketrack.models.spiking.backend`); on CPU every
backend runs spikingjelly's Torch path. The fused kernels only accept spikingjelly's built-in surrogates
(Sigmoid, ATan, ...); other surrogates fall back to the Torch reference inside spikingjelly.
:func:`check_backend` (called once when training starts) runs one neuron of the configured kind on the device,
so a forced backend that cannot run there is a one-line ConfigError at start-up, never a failure mid-training.

Precision: the membrane is float32 whatever autocast does to the layers around it. spikingjelly's fused LIF /
I-LIF kernels take bf16 or fp16 input but need a float32 membrane (else they fall back to the Torch path, or
refuse when a backend is forced), and a bf16 membrane would also lose the small leak steps of a long
integration. Each neuron casts its input up to float32, runs, and casts its spikes back to the input dtype
(exact: spike values {0, 1/D, ..., 1} with D <= 64 are representable in bf16 and fp16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate as sj_surrogate
from torch import nn

from spiketrack.config import NeuronConfig
from spiketrack.errors import ConfigError
from spiketrack.models.spiking.backend import SJ_OPS, note_once, resolve_backend, select_backend

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

NeuronFactory = Callable[[], nn.Module]
"""A callable returning a fresh multi-step neuron ([T, B, ...] -> [T, B, ...] values in {0, 1/D, ..., 1})."""


def _surrogate_class(name: str) -> type:
    if name.lower() not in SURROGATES:
        raise ConfigError(f"key 'model.neuron.surrogate': unknown surrogate {name!r}; expected one of {sorted(SURROGATES)}")
    return SURROGATES[name.lower()]


def _binary_levels(levels: int) -> int:
    if levels != 1:
        raise ConfigError(
            f"key 'model.neuron.levels': binary 'lif' neurons have 1 level, got {levels}; use kind 'integer_lif' for D > 1"
        )
    return 1


def _integer_levels(levels: int) -> int:
    if levels < 1:
        raise ConfigError(f"key 'model.neuron.levels': expected an integer >= 1, got {levels}")
    return int(levels)


class LIF(sj_neuron.LIFNode):
    """Binary multi-step LIF neuron. forward: [T, B, ...] -> spikes {0, 1} of the same shape."""

    levels: int = 1

    def __init__(
        self,
        *,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        detach_reset: bool = True,
        surrogate: str = "sigmoid",
        surrogate_alpha: float = 4.0,
        levels: int = 1,
    ) -> None:
        _binary_levels(levels)
        super().__init__(
            tau=tau,
            decay_input=True,
            v_threshold=v_threshold,
            v_reset=0.0,
            surrogate_function=_surrogate_class(surrogate)(alpha=surrogate_alpha),
            detach_reset=detach_reset,
            step_mode="m",
        )

    def multi_step_forward(self, x_seq: torch.Tensor, *args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        """x_seq: [T, B, ...] (any float dtype) -> spikes in x_seq's dtype; the membrane stays float32."""
        return super().multi_step_forward(x_seq.float(), *args, **kwargs).to(x_seq.dtype)


class IntegerLIF(sj_neuron.ILIFNode):
    """Integer-valued multi-step I-LIF neuron normalised to {0, 1/D, ..., 1}.

    forward: [T, B, ...] -> [T, B, ...] values count / D, count in {0, ..., D}. Its surrogate gradient is
    spikingjelly's ``MultiLevelSpikeCount(D)`` (``surrogate`` / ``surrogate_alpha`` do not apply).
    """

    def __init__(
        self,
        *,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        detach_reset: bool = True,
        surrogate: str = "sigmoid",
        surrogate_alpha: float = 4.0,
        levels: int = 1,
    ) -> None:
        del surrogate, surrogate_alpha  # I-LIF trains through its multi-level spike-count surrogate
        levels = _integer_levels(levels)
        super().__init__(
            tau=tau,
            v_threshold=v_threshold,
            surrogate_function=sj_surrogate.MultiLevelSpikeCount(levels),
            detach_reset=detach_reset,
            step_mode="m",
        )
        self.levels = int(levels)

    def multi_step_forward(self, x_seq: torch.Tensor, *args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        """x_seq: [T, B, ...] membrane input (any float dtype) -> [T, B, ...] normalised spike counts in x_seq's
        dtype; the membrane stays float32."""
        return (super().multi_step_forward(x_seq.float(), *args, **kwargs) / self.levels).to(x_seq.dtype)


@dataclass(frozen=True)
class NeuronKind:
    """One neuron kind: its module class, its levels rule (configured D -> D) and its spikingjelly op name."""

    cls: type[nn.Module]
    levels: Callable[[int], int]
    op: str  # spikingjelly neuron op: functional.neuron_implementation(op, ...), SJ_<OP>_CUDA_IMPLEMENTATION


NEURONS: dict[str, NeuronKind] = {
    "lif": NeuronKind(LIF, _binary_levels, "lif"),
    "integer_lif": NeuronKind(IntegerLIF, _integer_levels, "ilif"),
}
assert {k.op for k in NEURONS.values()} <= set(SJ_OPS), "backend.SJ_OPS must list every neuron op"

SpikingNeuron = tuple(k.cls for k in NEURONS.values())


def _kind(cfg: NeuronConfig) -> NeuronKind:
    if cfg.kind not in NEURONS:
        raise ConfigError(f"key 'model.neuron.kind': expected one of {sorted(NEURONS)}, got {cfg.kind!r}")
    return NEURONS[cfg.kind]


def neuron_factory(cfg: NeuronConfig) -> NeuronFactory:
    """The neuron factory of ``cfg`` (checked once here): call it for each fresh neuron module."""
    kind = _kind(cfg)
    select_backend(cfg.backend)
    _surrogate_class(cfg.surrogate)
    return partial(
        kind.cls,
        tau=cfg.tau,
        v_threshold=cfg.v_threshold,
        detach_reset=cfg.detach_reset,
        surrogate=cfg.surrogate,
        surrogate_alpha=cfg.surrogate_alpha,
        levels=kind.levels(cfg.levels),
    )


def make_neuron(cfg: NeuronConfig) -> nn.Module:
    """One neuron as configured (``neuron_factory(cfg)()``)."""
    return neuron_factory(cfg)()


def neuron_levels(cfg: NeuronConfig) -> int:
    """D, the number of non-zero spike levels (1 for binary LIF)."""
    return _kind(cfg).levels(cfg.levels)


def implementation(cfg: NeuronConfig, device: torch.device) -> str:
    """Implementation spikingjelly binds for this neuron on ``device`` (e.g. 'triton', 'torch-reference').

    Asks spikingjelly's public ``functional.neuron_implementation``; on CPU that is always its Torch reference.
    """
    resolve_backend(cfg.backend)
    return str(sj_functional.neuron_implementation(_kind(cfg).op, device)["implementation"])


def check_backend(cfg: NeuronConfig, device: torch.device | str, amp_dtype: torch.dtype | None = None) -> str:
    """Say once, at start-up, what runs the neurons on ``device``; a forced backend that cannot run is an error.

    On CPU every backend runs spikingjelly's Torch path: a forced ``triton``/``cuda`` backend is noted once
    (warning) and the Torch path runs. On CUDA one neuron of the configured kind runs a forward and backward
    pass (under ``amp_dtype`` autocast when given, as training does), so spikingjelly's refusal of a forced
    implementation (no Triton, a surrogate without a fused kernel, ...) surfaces here as a ConfigError naming
    the key, not mid-training. Returns the implementation spikingjelly binds ('triton', 'torch-reference', ...).
    """
    device = torch.device(device)
    name = resolve_backend(cfg.backend)
    if device.type != "cuda":
        if name not in ("auto", "torch"):
            note_once(
                f"cpu:{cfg.backend}",
                f"model.neuron.backend {cfg.backend!r} selects a CUDA implementation; on {device.type} every neuron "
                "runs spikingjelly's Torch path",
            )
        return implementation(cfg, device)
    neuron = make_neuron(cfg).to(device)
    x = torch.rand(2, 1, 8, device=device, requires_grad=True)
    try:
        with torch.autocast("cuda", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            neuron(x * 2.0).sum().backward()
        impl = implementation(cfg, device)
    except RuntimeError as exc:
        raise ConfigError(
            f"key 'model.neuron.backend': {cfg.backend!r} cannot run the {cfg.kind} neurons on {device} "
            f"({' '.join(str(exc).split())}); use 'auto' (spikingjelly's own choice)"
        ) from None
    finally:
        reset_neurons(neuron)
    note_once(f"{device}:{cfg.backend}:{cfg.kind}", f"neurons ({cfg.kind}) run spikingjelly's {impl!r} on {device}",
              warn=False)
    return impl


def reset_neurons(module: nn.Module) -> None:
    """Reset the membrane state of every spikingjelly neuron below ``module``."""
    sj_functional.reset_net(module)


__all__ = [
    "LIF",
    "NEURONS",
    "IntegerLIF",
    "NeuronFactory",
    "NeuronKind",
    "SURROGATES",
    "SpikingNeuron",
    "check_backend",
    "implementation",
    "make_neuron",
    "neuron_factory",
    "neuron_levels",
    "reset_neurons",
]
