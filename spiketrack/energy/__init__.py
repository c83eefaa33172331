"""Operation counting, energy profiles and energy-accuracy reports (docs/architecture.md, "Energy method").

- :func:`count_operations` / :class:`OperationCounter` -> :class:`OperationReport` (per-layer MACs, exact SOPs,
  paper-convention SOPs, firing rates per timestep) — :mod:`spiketrack.energy.counter`,
  :mod:`spiketrack.energy.operations`
- profiles (pJ per MAC / per SOP, with sources) — :mod:`spiketrack.energy.profiles`
- per-sequence accounting: :class:`EnergyMeter` — :mod:`spiketrack.energy.meter`
- tracked sequences and dataset runs (:func:`sequence_energy`, through the tracking runner) and reports —
  :mod:`spiketrack.energy.dataset`, :mod:`spiketrack.energy.report`
"""

from spiketrack.energy.counter import OperationCounter, count_call, count_operations
from spiketrack.energy.dataset import sequence_energy
from spiketrack.energy.meter import EnergyMeter
from spiketrack.energy.operations import LayerOps, OperationReport
from spiketrack.energy.profiles import PROFILES, EnergyProfile, get_profile

__all__ = [
    "PROFILES",
    "EnergyMeter",
    "EnergyProfile",
    "LayerOps",
    "OperationCounter",
    "OperationReport",
    "count_call",
    "count_operations",
    "get_profile",
    "sequence_energy",
]
