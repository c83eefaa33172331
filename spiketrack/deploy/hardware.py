"""Hardware profiles of neuromorphic chips: per-core limits, and per-layer fit, cores, energy and latency.

Every constant cites where it comes from; figures that a source gives per chip and that we divide per core say
so, and where no source gave a number (energy per synaptic operation of Speck and SpiNNaker2 in the sources
used here) the profile leaves it ``None`` and the report prints '-' instead of inventing one.

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

LOIHI2_BRIEF = ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', Technology Brief, "
                "2021 (128 neuron cores, up to 1 M neurons and 120 M synapses per chip)")
LOIHI1 = ("M. Davies et al., 'Loihi: A neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1), "
          "2018 (23.6 pJ and 3.5 ns per synaptic spike operation, 14 nm)")
SPECK_SAMNA = ("SynSense samna documentation, 'Speck 2b' (9 CNN layers; max input 128x128, max output feature map "
               "64x64, max 1024 features, 8-bit weights, 16-bit neuron state, kernel <= 16x16, fan-out 2), "
               "https://synsense-sys-int.gitlab.io/samna/models/speckSeries/speck2b.html")
SPECK_NEURONS = ("Open Neuromorphic, 'Speck - SynSense' (328 K configurable spiking neurons), "
                 "https://open-neuromorphic.org/neuromorphic-computing/hardware/speck-synsense; "
                 "M. Yao et al., Nat. Commun. 15:4464, 2024 (Speck SoC)")
SPINNAKER2 = ("H. A. Gonzalez et al., 'SpiNNaker2: A Large-Scale Neuromorphic System for Event-Based and "
              "Asynchronous Machine Learning', arXiv:2401.04491, 2024 (152 processing elements per chip); "
              "S. Hoeppner et al., 'The SpiNNaker 2 Processing Element Architecture ...', arXiv:2103.08392, 2021 "
              "(Arm Cortex-M4F PE with 128 kB local SRAM)")


@dataclass(frozen=True)
class HardwareProfile:
    """Limits of one neuromorphic chip (``None``: no limit of that kind / no published figure)."""

    name: str
    cores: int  # cores (neuron cores / CNN layers / processing elements) per chip
    neurons_per_core: int | None
    synapse_memory_bits_per_core: int | None  # weight memory of a core, in bits
    weight_bits: int  # maximum weight precision
    max_fan_in: int | None = None  # synapses into one neuron
    max_kernel: int | None = None  # max conv kernel side
    max_channels: int | None = None  # max feature maps of a layer
    max_feature_hw: tuple[int, int] | None = None  # max output feature map of a layer
    neurons_per_chip: int | None = None
    sop_energy_pj: float | None = None
    sop_time_ns: float | None = None
    conv_native: bool = False  # weights shared across positions (kernel memory, not per-synapse memory)
    source: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, HardwareProfile] = {
    "loihi2": HardwareProfile(
        "loihi2",
        cores=128,  # 128 neuron cores per chip (Loihi 2 brief)
        neurons_per_core=8192,  # 1 M neurons / 128 cores (Loihi 2 brief: per-chip maximum, divided per core)
        # 120 M synapses / 128 cores at 8 bits each (per-chip maximum divided per core; Loihi 2 compresses
        # synapses, so the real capacity depends on the encoding)
        synapse_memory_bits_per_core=120_000_000 // 128 * 8,
        weight_bits=8,  # Loihi 2 synaptic weights up to 8 bits (Loihi 2 brief; Loihi 1: 1-9 bits, Davies 2018)
        neurons_per_chip=1_000_000,
        sop_energy_pj=23.6,  # Loihi 1 figure (Davies 2018); Loihi 2 per-op energy is not published in the brief
        sop_time_ns=3.5,  # Loihi 1 figure (Davies 2018)
        conv_native=True,  # Loihi 2 supports shared (convolutional) weight encodings (Loihi 2 brief)
        source=f"{LOIHI2_BRIEF}; energy/time per SOP: {LOIHI1}",
        notes="per-core neuron and synapse limits are the per-chip maxima divided by 128; energy/latency use Loihi 1 figures",
    ),
    "speck": HardwareProfile(
        "speck",
        cores=9,  # 9 CNN layers (cores), one conv layer each (samna Speck 2b)
        neurons_per_core=None,  # bounded by max_feature_hw x max_channels and by the chip total
        synapse_memory_bits_per_core=None,  # kernel memory per core not in the sources used
        weight_bits=8,  # 8-bit weights (samna Speck 2b)
        max_kernel=16,  # kernel <= 16x16 (samna Speck 2b)
        max_channels=1024,  # max feature number 1024 (samna Speck 2b)
        max_feature_hw=(64, 64),  # max feature output size 64x64 (samna Speck 2b)
        neurons_per_chip=328_000,  # 328 K neurons (Open Neuromorphic; Yao et al. 2024)
        conv_native=True,
        source=f"{SPECK_SAMNA}; {SPECK_NEURONS}",
        notes="one conv layer per core; each layer may feed at most 2 layers (fan-out 2); no published pJ/SOP used",
    ),
    "spinnaker2": HardwareProfile(
        "spinnaker2",
        cores=152,  # 152 PEs per chip (Gonzalez et al. 2024)
        neurons_per_core=None,  # software-defined: bounded by the PE's SRAM (state counted in synapse memory)
        synapse_memory_bits_per_core=128 * 1024 * 8,  # 128 kB local SRAM per PE (Hoeppner et al. 2021), code included
        weight_bits=8,  # software-defined; 8-bit is the precision of its MAC accelerator (Hoeppner et al. 2021)
        source=SPINNAKER2,
        notes="PE SRAM holds weights (weight_bits each) and 32-bit neuron states; no published pJ/SOP used",
    ),
}


def get_hardware(name: str) -> HardwareProfile:
    if name not in PROFILES:
        raise KeyError(f"unknown hardware profile {name!r}; known: {sorted(PROFILES)}")
    return PROFILES[name]


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
    if weight_bits > hw.weight_bits:
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


__all__ = ["PROFILES", "HardwareProfile", "LayerFit", "get_hardware", "layer_fit", "network_fit"]
