"""Energy profiles: picojoules per multiply-accumulate (MAC) and per accumulate / synaptic operation (SOP).

E = E_MAC * MAC + E_AC * SOP (docs/architecture.md, "Energy method"). Every profile carries the source of its
figures and a note that
says what the figure covers (a single arithmetic unit, a whole chip, measured or estimated), so that a
report can print them next to the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spiketrack.config import EnergyConfig
from spiketrack.energy.hardware import HARDWARE
from spiketrack.errors import ConfigError

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V.
_HOROWITZ = "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014 (45 nm, 0.9 V)"


@dataclass(frozen=True)
class EnergyProfile:
    """Energy per operation of one hardware assumption.

    mac_pj: energy of one multiply-accumulate (a layer with dense input).
    ac_pj: energy of one accumulate, i.e. one synaptic operation (a layer with spike input); also used for a
        residual addition and a neuron update when those are included.
    """

    name: str
    mac_pj: float
    ac_pj: float
    source: str
    note: str = ""

    def energy_pj(self, mac: float, sop: float) -> float:
        """E = E_MAC * MAC + E_AC * SOP, in picojoules."""
        return self.mac_pj * mac + self.ac_pj * sop

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, EnergyProfile] = {
    p.name: p
    for p in (
        EnergyProfile(
            "45nm-fp32",
            mac_pj=4.6,  # FP32 mult 3.7 pJ + FP32 add 0.9 pJ (Horowitz 2014)
            ac_pj=0.9,  # FP32 add (Horowitz 2014)
            source=_HOROWITZ,
            note="Arithmetic only (no memory access, no data movement); the convention of most SNN papers.",
        ),
        EnergyProfile(
            "45nm-fp16",
            mac_pj=1.5,  # FP16 mult 1.1 pJ + FP16 add 0.4 pJ (Horowitz 2014)
            ac_pj=0.4,  # FP16 add (Horowitz 2014)
            source=_HOROWITZ,
            note="Arithmetic only (no memory access).",
        ),
        EnergyProfile(
            "45nm-int8",
            mac_pj=0.23,  # INT8 mult 0.2 pJ + INT8 add 0.03 pJ (Horowitz 2014)
            ac_pj=0.03,  # INT8 add (Horowitz 2014)
            source=_HOROWITZ,
            note="Arithmetic only; assumes 8-bit accumulation (a 32-bit accumulator costs 0.1 pJ per add).",
        ),
    )
}
# chips with a published energy per synaptic operation: one profile each, named and sourced as in the one hardware
# table (dense layers, which these chips cannot run, are charged at 45 nm FP32)
PROFILES.update({
    hw.name: EnergyProfile(
        hw.name,
        mac_pj=4.6,  # dense layers are assumed to run on a 45 nm FP32 unit (Horowitz 2014)
        ac_pj=hw.sop_energy_pj,
        source=f"{hw.source}; MAC: {_HOROWITZ}",
        note=f"{hw.energy_note} Dense layers (MAC) are charged at 45 nm FP32.",
    )
    for hw in HARDWARE.values()
    if hw.sop_energy_pj is not None
})
# profile names that were renamed: old name -> new name (a clear error instead of 'unknown')
RENAMED: dict[str, str] = {"loihi": "loihi2"}

DEFAULT_PROFILE = EnergyConfig.profile  # the config default is the one place that names it


def get_profile(profile: str | EnergyProfile) -> EnergyProfile:
    """Look a profile up by name (or pass an :class:`EnergyProfile` through); unknown names are a ConfigError."""
    if isinstance(profile, EnergyProfile):
        return profile
    if profile in RENAMED:
        raise ConfigError(
            f"energy.profile: {profile!r} is now named {RENAMED[profile]!r} (one name per chip, from "
            f"spiketrack.energy.hardware.HARDWARE; the same figures)"
        )
    try:
        return PROFILES[profile]
    except KeyError:
        raise ConfigError(
            f"energy.profile: unknown energy profile {profile!r} (known: {', '.join(sorted(PROFILES))})"
        ) from None
