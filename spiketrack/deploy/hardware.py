"""Mapping a network onto neuromorphic chips: per-layer fit, cores, energy and latency.

The chips and their limits are the one hardware table :data:`spiketrack.energy.hardware.HARDWARE` (re-exported
here); the deploy report uses the chips that have a mapping model (:func:`mappable_hardware`).

The mapping model is deliberately simple (one layer on whole cores, no sharing of a core between layers):
a layer needs ``max(ceil(neurons / neurons_per_core), ceil(synapse_bits / synapse_bits_per_core))`` cores,
and it fits when its fan-in, kernel, channels and weight bits are within the chip's limits and the whole
network fits the chip's cores. Latency per frame assumes the cores work in parallel and a core serialises
its synaptic operations: ``max over layers of SOP_layer / cores_layer * t_sop`` per timestep, summed over T.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from spiketrack.energy.hardware import HARDWARE, HardwareProfile, get_hardware, mappable_hardware


@dataclass
class LayerFit:
    """One layer on one chip."""

    layer: str
    fits: bool
    cores: int
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_fit(hw: HardwareProfile, layer: dict[str, Any], weight_bits: int = 8) -> LayerFit:
    """Whether ``layer`` (a deploy-report row) fits ``hw`` and the cores it needs.

    Row keys used: name, neurons (outputs per timestep), fan_in, weights, kernel, out_channels, out_hw.
    """
    reasons: list[str] = []
    if hw.cores is None:
        raise ValueError(f"{hw.name}: no mapping model for this chip (energy figure only)")
    if hw.weight_bits is not None and weight_bits > hw.weight_bits:
        reasons.append(f"weights {weight_bits} bits > {hw.weight_bits}")
    if hw.max_fan_in is not None and layer["fan_in"] > hw.max_fan_in:
        reasons.append(f"fan-in {layer['fan_in']} > {hw.max_fan_in}")
    k = layer.get("kernel")
    if hw.max_kernel is not None and k and max(k) > hw.max_kernel:
        reasons.append(f"kernel {k} > {hw.max_kernel}")
    if hw.max_channels is not None and layer.get("out_channels", 0) > hw.max_channels:
        reasons.append(f"channels {layer['out_channels']} > {hw.max_channels}")
    hw_out = layer.get("out_hw")
    if hw.max_feature_hw is not None and hw_out and (hw_out[0] > hw.max_feature_hw[0] or hw_out[1] > hw.max_feature_hw[1]):
        reasons.append(f"feature map {hw_out} > {hw.max_feature_hw}")
    need = 1
    if hw.neurons_per_core:
        need = max(need, math.ceil(layer["neurons"] / hw.neurons_per_core))
    if hw.synapse_memory_bits_per_core:
        stored = layer["weights"] if hw.conv_native or not layer.get("kernel") else layer["synapses"]
        bits = stored * weight_bits + (0 if hw.neurons_per_core else layer["neurons"] * 32)
        need = max(need, math.ceil(bits / hw.synapse_memory_bits_per_core))
    return LayerFit(layer["name"], not reasons, need, reasons)


def network_fit(hw: HardwareProfile, layers: list[dict[str, Any]], weight_bits: int = 8, timesteps: int = 1) -> dict[str, Any]:
    """Per-layer fits, the cores of the whole network, whether it fits one chip, energy and latency per frame."""
    fits = [layer_fit(hw, layer, weight_bits) for layer in layers]
    assert hw.cores is not None  # layer_fit refuses chips without a mapping model
    cores = sum(f.cores for f in fits)
    neurons = sum(layer["neurons"] for layer in layers)
    reasons = [f"{f.layer}: {r}" for f in fits for r in f.reasons]
    if cores > hw.cores:
        reasons.append(f"{cores} cores > {hw.cores} per chip")
    if hw.neurons_per_chip is not None and neurons > hw.neurons_per_chip:
        reasons.append(f"{neurons} neurons > {hw.neurons_per_chip} per chip")
    sops = sum(layer["sop_per_frame"] for layer in layers)
    energy = None if hw.sop_energy_pj is None else sops * hw.sop_energy_pj * 1e-9  # mJ
    latency = None
    if hw.sop_time_ns is not None:
        per_step = max((layer["sop_per_frame"] / max(timesteps, 1) / f.cores for layer, f in zip(layers, fits)), default=0.0)
        latency = per_step * timesteps * hw.sop_time_ns * 1e-6  # ms
    return {
        "hardware": hw.name,
        "fits": not reasons,
        "cores": cores,
        "chips": max(1, math.ceil(cores / hw.cores)),
        "reasons": reasons,
        "energy_mj_per_frame": energy,
        "latency_ms_per_frame": latency,
        "layers": [f.to_dict() for f in fits],
        "source": hw.source,
        "notes": hw.notes,
    }


__all__ = ["HARDWARE", "HardwareProfile", "LayerFit", "get_hardware", "layer_fit", "mappable_hardware", "network_fit"]
