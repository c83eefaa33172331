"""Per-sequence energy accounting during tracking (``spiketrack track --energy``).

:class:`OperationMeter` is the tracker's ``meter``: every model call (template_init, template_update,
search) runs under :class:`spiketrack.energy.counter.OperationCounter`, and the exact MACs/SOPs of each
call are summed per kind. ``summary(frames)`` gives totals, per-kind figures, energy per frame in mJ
(profile and residual/neuron options from ``cfg.energy``) — what ``<sequence>_energy.json`` holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from spiketrack.config import ExperimentConfig


@dataclass
class _KindTotals:
    calls: int = 0
    mac: int = 0
    sop: int = 0
    sop_paper: float = 0.0
    residual_adds: int = 0
    neuron_updates: int = 0
    spikes: int = 0
    energy_mj: float = 0.0


@dataclass
class OperationMeter:
    """Counts the operations of every model call the tracker makes; one meter per sequence."""

    model: nn.Module
    timesteps: int = 1
    profile: str = "45nm-fp32"
    include_residual: bool = False
    include_neuron: bool = False
    kinds: dict[str, _KindTotals] = field(default_factory=dict)

    @contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        """Count the operations of the model call run inside this block as ``kind``."""
        from spiketrack.energy.counter import OperationCounter

        with OperationCounter(self.model, timesteps=self.timesteps) as counter:
            yield
        report = counter.report()
        k = self.kinds.setdefault(kind, _KindTotals())
        k.calls += 1
        k.mac += report.total_mac
        k.sop += report.total_sop
        k.sop_paper += report.total_sop_paper
        k.residual_adds += report.residual_adds
        k.neuron_updates += report.total_neuron_updates
        k.spikes += report.total_spikes
        k.energy_mj += report.energy_mj(
            self.profile, include_residual=self.include_residual, include_neuron=self.include_neuron
        )

    def summary(self, frames: int) -> dict[str, Any]:
        """Totals over the sequence and per call kind; ``energy_mj_per_frame`` divides by ``frames``."""
        kinds = {name: vars(k).copy() for name, k in self.kinds.items()}
        total = {key: sum(k[key] for k in kinds.values()) for key in vars(_KindTotals())}
        return {
            "profile": self.profile,
            "timesteps": self.timesteps,
            "frames": frames,
            "total": total,
            "energy_mj_per_frame": total["energy_mj"] / frames if frames else 0.0,
            "kinds": kinds,
        }


def make_meter(model: nn.Module, cfg: ExperimentConfig) -> OperationMeter:
    """Meter for ``model`` with T, profile and options from ``cfg`` (T = 1 for the ANN teacher)."""
    timesteps = int(cfg.model.timesteps) if cfg.model.kind == "student" else 1
    return OperationMeter(
        model,
        timesteps=timesteps,
        profile=cfg.energy.profile,
        include_residual=cfg.energy.count_residual,
        include_neuron=cfg.energy.count_neuron,
    )


__all__ = ["OperationMeter", "make_meter"]
