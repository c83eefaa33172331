"""What one counted forward did: operations per layer call and per neuron call, totals and energy
(docs/architecture.md, "Energy method").

:class:`~spiketrack.energy.counter.OperationCounter` fills these; :mod:`spiketrack.energy.meter` sums them over a
sequence, and ``to_dict``/``from_dict`` are the JSON form of the energy files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from spiketrack.energy.profiles import DEFAULT_PROFILE, EnergyProfile, get_profile


@dataclass
class LayerOps:
    """Operations of one call of one layer (a module called twice appears twice, ``name#1`` the second time).

    mac: multiply-accumulates (dense input). sop: exact synaptic operations (spike input).
    sop_paper: fr x T x FLOPs. dense_mac: MACs the layer would cost with a dense input (= T x FLOPs).
    firing_rate: mean unit spikes per input element and timestep (None for dense input).
    *_per_timestep: time-major split (None for a static layer without a time dimension).
    """

    name: str
    type: str
    input_kind: str
    operands: str
    mac: int
    sop: int
    sop_paper: float
    dense_mac: int
    firing_rate: float | None
    firing_rate_per_timestep: list[float] | None
    sop_per_timestep: list[int] | None
    mac_per_timestep: list[float] | None
    input_shape: list[int]
    output_shape: list[int]
    timesteps: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NeuronOps:
    """One call of one spiking-neuron module: membrane updates and emitted unit spikes."""

    name: str
    type: str
    updates: int
    spikes: int
    output_shape: list[int]

    @property
    def firing_rate(self) -> float:
        return self.spikes / self.updates if self.updates else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "firing_rate": self.firing_rate}


@dataclass
class OperationReport:
    """Everything one counted forward did; totals, per-timestep sums and energy."""

    layers: list[LayerOps] = field(default_factory=list)
    neurons: list[NeuronOps] = field(default_factory=list)
    residual_adds: int = 0
    timesteps: int = 1

    @property
    def total_mac(self) -> int:
        return sum(layer.mac for layer in self.layers)

    @property
    def total_sop(self) -> int:
        return sum(layer.sop for layer in self.layers)

    @property
    def total_sop_paper(self) -> float:
        return float(sum(layer.sop_paper for layer in self.layers))

    @property
    def total_neuron_updates(self) -> int:
        return sum(n.updates for n in self.neurons)

    @property
    def total_spikes(self) -> int:
        return sum(n.spikes for n in self.neurons)

    @property
    def firing_rate(self) -> float | None:
        """Mean unit spikes per neuron update over all neurons (None when the model has no neurons)."""
        updates = self.total_neuron_updates
        return self.total_spikes / updates if updates else None

    def per_timestep_sop(self) -> list[int]:
        """Exact SOPs of each timestep, summed over layers that have a time dimension of length T."""
        return self._per_timestep("sop_per_timestep", 0)

    def per_timestep_mac(self) -> list[float]:
        """MACs of each timestep, summed over layers that have a time dimension of length T."""
        return self._per_timestep("mac_per_timestep", 0.0)

    def _per_timestep(self, key: str, zero: float) -> list:
        out = [zero] * self.timesteps
        for layer in self.layers:
            values = getattr(layer, key)
            if values is not None and len(values) == self.timesteps:
                out = [a + b for a, b in zip(out, values)]
        return out

    def energy_pj(
        self,
        profile: str | EnergyProfile = DEFAULT_PROFILE,
        convention: str = "exact",
        include_residual: bool = False,
        include_neuron: bool = False,
    ) -> float:
        """E = E_MAC * MAC + E_AC * SOP in pJ; ``convention`` 'exact' or 'paper' picks the SOP count.

        Residual additions and neuron updates cost one accumulate (E_AC) each when included.
        """
        prof = get_profile(profile)
        if convention not in ("exact", "paper"):
            raise ValueError(f"convention must be 'exact' or 'paper', got {convention!r}")
        sop = self.total_sop if convention == "exact" else self.total_sop_paper
        extra = (self.residual_adds if include_residual else 0) + (
            self.total_neuron_updates if include_neuron else 0
        )
        return prof.energy_pj(self.total_mac, sop + extra)

    def energy_mj(self, profile: str | EnergyProfile = DEFAULT_PROFILE, **kwargs: Any) -> float:
        """Energy in millijoules (1 mJ = 1e9 pJ); keyword arguments as :meth:`energy_pj`."""
        return self.energy_pj(profile, **kwargs) * 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "timesteps": self.timesteps,
            "total_mac": self.total_mac,
            "total_sop": self.total_sop,
            "total_sop_paper": self.total_sop_paper,
            "residual_adds": self.residual_adds,
            "neuron_updates": self.total_neuron_updates,
            "spikes": self.total_spikes,
            "firing_rate": self.firing_rate,
            "per_timestep_sop": self.per_timestep_sop(),
            "per_timestep_mac": self.per_timestep_mac(),
            "layers": [layer.to_dict() for layer in self.layers],
            "neurons": [n.to_dict() for n in self.neurons],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationReport:
        """Inverse of :meth:`to_dict` (derived totals are recomputed)."""
        neurons = []
        for n in data.get("neurons", []):
            n = {k: v for k, v in n.items() if k != "firing_rate"}
            neurons.append(NeuronOps(**n))
        return cls(
            layers=[LayerOps(**layer) for layer in data.get("layers", [])],
            neurons=neurons,
            residual_adds=int(data.get("residual_adds", 0)),
            timesteps=int(data.get("timesteps", 1)),
        )
