"""The one table of neuromorphic chips (:data:`HARDWARE`): mapping limits and published energy per synaptic op.

Every chip has one name and one row. The deploy report (:mod:`spiketrack.deploy.hardware`) maps networks onto
the rows that have a mapping model (``cores`` set); the energy profiles (:mod:`spiketrack.energy.profiles`) take
the chips with a published energy per synaptic operation (``sop_energy_pj``) as profiles of the same name. A new
chip is one row here.

Every constant cites where it comes from; figures that a source gives per chip and that we divide per core say
so, and where no source gave a number (energy per synaptic operation of Speck and SpiNNaker2 in the sources
used here) the row leaves it ``None`` and reports print '-' instead of inventing one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from spiketrack.errors import ConfigError

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


TRUENORTH = ("P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a scalable communication "
             "network and interface', Science 345(6197), 2014 (26 pJ per synaptic event)")


@dataclass(frozen=True)
class HardwareProfile:
    """One neuromorphic chip (``None``: no limit of that kind / no published figure).

    ``cores`` None: no mapping model for this chip here (its energy figure only).
    """

    name: str
    cores: int | None  # cores (neuron cores / CNN layers / processing elements) per chip
    neurons_per_core: int | None
    synapse_memory_bits_per_core: int | None  # weight memory of a core, in bits
    weight_bits: int | None  # maximum weight precision
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
    energy_note: str = ""  # what ``sop_energy_pj`` covers (the energy profile of the same name prints it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


HARDWARE: dict[str, HardwareProfile] = {
    "truenorth": HardwareProfile(
        "truenorth",
        cores=None,  # energy figure only: no mapping model for TrueNorth's binary crossbar cores here
        neurons_per_core=None,
        synapse_memory_bits_per_core=None,
        weight_bits=None,
        sop_energy_pj=26.0,  # 26 pJ per synaptic event (Merolla et al., Science 2014)
        source=TRUENORTH,
        energy_note="System-level figure: whole-chip power divided by synaptic events (includes neuron updates, "
        "routing, leakage).",
    ),
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
        energy_note="Per synaptic spike operation of a Loihi core (Loihi 1, 14 nm; no per-operation figure is "
        "published for Loihi 2); excludes neuron updates, spike routing and off-chip I/O.",
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
    """The chip called ``name``; an unknown name is a ConfigError listing the known chips."""
    if name not in HARDWARE:
        raise ConfigError(f"unknown hardware {name!r}; known chips: {', '.join(sorted(HARDWARE))}")
    return HARDWARE[name]


def mappable_hardware() -> dict[str, HardwareProfile]:
    """The chips with a mapping model (``cores`` set), in table order: the deploy report's columns."""
    return {name: hw for name, hw in HARDWARE.items() if hw.cores is not None}


__all__ = ["HARDWARE", "HardwareProfile", "get_hardware", "mappable_hardware"]
