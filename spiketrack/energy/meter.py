"""Per-sequence energy: E_seq = E_template_init + sum of template updates + sum over frames of the search branch.

:class:`EnergyMeter` counts every model call of one sequence with :class:`~spiketrack.energy.counter.OperationCounter`
and keeps frame-level and layer-level breakdowns. It serves two callers:

- the tracker (``spiketrack.tracking.tracker.ModelTracker``): the meter protocol of
  :mod:`spiketrack.tracking.meter` (``measure(kind)``, kind ``template_init`` | ``template_update`` | ``search``;
  ``set_frame``; ``summary``), with :meth:`EnergyMeter.from_config` as the runner's meter factory;
- any loop: ``meter.count_template(fn, *inputs)`` / ``meter.count_search(fn, *inputs)`` return the call's output.

Timesteps: a template call (``template_init`` / ``template_update``) runs the template branch's T_t steps
(``model.input_spec.template_steps``, SpikeTrack's asymmetric timesteps), a search call the search T; each call's
counter splits time by its own T, so per-layer and per-timestep tables are right for both. ``per_timestep_sop``
sums each call's steps from step 0 (its length is the larger T).

Test-time tuning (kind ``test_time_tuning``, listed in ``kinds`` only when it happened, included in the totals):
a training forward is counted like any call and its backward pass adds ``BACKWARD_DENSE_FACTOR`` x the forward's
dense MACs (see the constant); the template re-encoded after tuning is a plain forward of the same kind.

Frame attribution: ``set_frame(k)`` names the frame of the following calls; without it, ``template_init`` is
frame 0 and each ``search`` call advances to the next frame (a frame whose search crop held no events runs no
model and costs nothing, so callers that skip frames should use ``set_frame``).
:func:`spiketrack.energy.dataset.sequence_energy` runs the real tracker over a sequence with a meter attached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spiketrack.energy.counter import OperationCounter
from spiketrack.energy.memory import LEMAIRE, MemoryReport, memory_report
from spiketrack.energy.operations import OperationReport
from spiketrack.energy.profiles import DEFAULT_PROFILE, get_profile
from spiketrack.tracking.meter import ALL_KINDS, KINDS, TUNING_KIND

# Backward pass of test-time tuning: gradients are real-valued (surrogate gradients, not spikes), so each counted
# layer's backward costs dense MACs: the input gradient (the layer's dense MACs) and, for a trained layer, the
# weight gradient (the same again). We charge 2 x the forward's dense MACs of every layer -- an upper bound (frozen
# layers need no weight gradient), i.e. forward + backward ~ 3 x forward operations, the usual training estimate
# (Kaplan et al. 2020, "Scaling laws for neural language models": ~2N forward, ~4N backward per token).
BACKWARD_DENSE_FACTOR = 2
_TOTAL_KEYS = ("calls", "mac", "sop", "sop_paper", "residual_adds", "neuron_updates", "spikes", "energy_mj",
               "energy_mj_paper")


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (reported beside its energy)."""
    return sum(p.numel() for p in model.parameters())


@dataclass
class CallRecord:
    """One counted model call: its kind, frame and operation report."""

    kind: str
    frame: int
    report: OperationReport
    energy_mj: float
    energy_mj_paper: float
    backward_mac: int = 0  # MACs of a backward pass (test-time tuning), included in mac and energy


def _totals(records: list[CallRecord]) -> dict[str, float]:
    out: dict[str, float] = dict.fromkeys(_TOTAL_KEYS, 0)
    for r in records:
        _add_to_totals(out, r)
    return out


def _add_to_totals(out: dict[str, float], r: CallRecord) -> None:
    """Add one call to running totals (the same sums, in the same order, as :func:`_totals`)."""
    rep = r.report
    out["calls"] += 1
    out["mac"] += rep.total_mac + r.backward_mac
    out["sop"] += rep.total_sop
    out["sop_paper"] += rep.total_sop_paper
    out["residual_adds"] += rep.residual_adds
    out["neuron_updates"] += rep.total_neuron_updates
    out["spikes"] += rep.total_spikes
    out["energy_mj"] += r.energy_mj
    out["energy_mj_paper"] += r.energy_mj_paper


def aggregate_layers(reports: list[OperationReport]) -> list[dict[str, Any]]:
    """Sum per-layer operations over several calls of the same model (layers matched by name, first-seen order).

    firing_rate is the mean over the calls; sop_per_timestep the element-wise sum where every call had T steps.
    """
    rows: dict[str, dict[str, Any]] = {}
    for rep in reports:
        _add_layers(rows, rep)
    return _finish_layers(rows)


def _add_layers(rows: dict[str, dict[str, Any]], rep: OperationReport) -> None:
    """Add one call's layers to running per-layer rows (see :func:`aggregate_layers`)."""
    for lay in rep.layers:
        row = rows.setdefault(
            lay.name,
            {"name": lay.name, "type": lay.type, "input_kind": lay.input_kind, "operands": lay.operands,
             "calls": 0, "mac": 0, "sop": 0, "sop_paper": 0.0, "dense_mac": 0, "_fr": [0, 0],
             "sop_per_timestep": None, "output_shape": lay.output_shape},
        )
        row["calls"] += 1
        row["mac"] += lay.mac
        row["sop"] += lay.sop
        row["sop_paper"] += lay.sop_paper
        row["dense_mac"] += lay.dense_mac
        if lay.firing_rate is not None:
            row["_fr"][0] += lay.firing_rate  # running sum and count (sum() of the list, in order)
            row["_fr"][1] += 1
        if lay.sop_per_timestep is not None:
            prev = row["sop_per_timestep"]
            row["sop_per_timestep"] = (
                list(lay.sop_per_timestep) if prev is None or row["calls"] == 1 or len(prev) != len(lay.sop_per_timestep)
                else [a + b for a, b in zip(prev, lay.sop_per_timestep)]
            )


def _finish_layers(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows.values():
        row = dict(row)
        fr_sum, fr_n = row.pop("_fr")
        row["firing_rate"] = fr_sum / fr_n if fr_n else None
        if row["sop_per_timestep"] is not None:
            row["sop_per_timestep"] = list(row["sop_per_timestep"])
        out.append(row)
    return out


@dataclass
class _Running:
    """Per-sequence sums kept as calls arrive, so a meter's memory does not grow with the sequence length."""

    total: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_TOTAL_KEYS, 0))
    kinds: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict.fromkeys(_TOTAL_KEYS, 0) for k in ALL_KINDS}
    )
    frames: dict[int, tuple[list[str], dict[str, float]]] = field(default_factory=dict)
    per_t: list[Any] | None = None
    layers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    last_frame: int = -1
    memory: dict[str, float] = field(default_factory=dict)  # memory-aware sums (only with EnergyMeter.memory)
    memory_kinds: dict[str, float] = field(default_factory=dict)
    memory_layers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class EnergyMeter:
    """Counts the operations of every model call of one sequence; see the module docstring."""

    model: nn.Module
    timesteps: int = 1
    template_timesteps: int | None = None  # T_t of template calls (None: = timesteps)
    profile: str = DEFAULT_PROFILE
    include_residual: bool = False
    include_neuron: bool = False
    keep_records: bool = False  # keep every CallRecord (per-layer reports) in ``records``; off: memory stays flat
    memory: bool = False  # also the memory-aware energy (spiketrack.energy.memory): new summary fields, off by default
    records: list[CallRecord] = field(default_factory=list)
    _running: _Running = field(default_factory=_Running, repr=False)
    _frame: int | None = None
    _explicit_frame: bool = False

    def __post_init__(self) -> None:
        get_profile(self.profile)  # unknown profile -> ConfigError now, not after a whole sequence

    @classmethod
    def from_config(cls, model: nn.Module, cfg: Any) -> EnergyMeter:
        """Meter with T and the template's T_t (the model's event bins; 1 for a model of dense views), profile,
        residual/neuron options and memory-aware energy (``cfg.energy``)."""
        spec = model.input_spec
        timesteps = int(spec.timesteps or 1)
        template_timesteps = int(getattr(spec, "template_steps", 0) or timesteps)
        return cls(model, timesteps=timesteps, template_timesteps=template_timesteps, profile=cfg.energy.profile,
                   include_residual=cfg.energy.count_residual, include_neuron=cfg.energy.count_neuron,
                   memory=cfg.energy.memory)

    # ------------------------------------------------------------------------------------------ counting
    def set_frame(self, k: int) -> None:
        """The following calls belong to frame ``k``."""
        self._frame, self._explicit_frame = int(k), True

    def _frame_for(self, kind: str) -> int:
        if self._explicit_frame and self._frame is not None:
            return self._frame
        if kind == "template_init" and self._frame is None:
            self._frame = 0
        elif kind == "search":
            self._frame = 1 if self._frame is None else self._frame + 1
        return self._frame or 0

    def timesteps_of(self, kind: str) -> int:
        """T of a call of ``kind``: the template's T_t for template calls, else the search T."""
        if kind.startswith("template") and self.template_timesteps:
            return int(self.template_timesteps)
        return self.timesteps

    @property
    def _per_t_length(self) -> int:
        return max(self.timesteps, int(self.template_timesteps or 0))

    @contextmanager
    def measure(self, kind: str) -> Iterator[OperationCounter]:
        """Count the model call(s) run inside this block as ``kind`` (the tracker's meter protocol)."""
        if kind not in ALL_KINDS:
            raise ValueError(f"kind must be one of {ALL_KINDS}, got {kind!r}")
        frame = self._frame_for(kind)
        counter = OperationCounter(self.model, timesteps=self.timesteps_of(kind), batch_size=1)
        # a tuning call trains: its forward keeps gradients and its backward is charged (BACKWARD_DENSE_FACTOR)
        with (torch.enable_grad() if kind == TUNING_KIND else torch.no_grad()), counter:
            yield counter
        self._add(kind, frame, counter.report(), backward=kind == TUNING_KIND and counter.saw_grad)

    def _add(self, kind: str, frame: int, report: OperationReport, backward: bool = False) -> None:
        """Add one call; ``backward``: it was a training forward, whose backward pass is charged as well."""
        opts = dict(include_residual=self.include_residual, include_neuron=self.include_neuron)
        backward_mac = BACKWARD_DENSE_FACTOR * sum(layer.dense_mac for layer in report.layers) if backward else 0
        extra = get_profile(self.profile).energy_pj(backward_mac, 0) * 1e-9
        record = CallRecord(kind, frame, report, report.energy_mj(self.profile, **opts) + extra,
                            report.energy_mj(self.profile, convention="paper", **opts) + extra, backward_mac)
        if self.keep_records:
            self.records.append(record)
        run = self._running
        _add_to_totals(run.total, record)
        _add_to_totals(run.kinds[kind], record)
        kinds_of_frame, frame_totals = run.frames.setdefault(frame, ([], dict.fromkeys(_TOTAL_KEYS, 0)))
        kinds_of_frame.append(kind)
        _add_to_totals(frame_totals, record)
        run.last_frame = max(run.last_frame, frame)
        per_t = run.per_t if run.per_t is not None else [0] * self._per_t_length
        steps = report.per_timestep_sop()
        run.per_t = [a + (steps[i] if i < len(steps) else 0) for i, a in enumerate(per_t)]
        _add_layers(run.layers.setdefault(kind, {}), report)
        if self.memory:
            _add_memory(run, kind, memory_report(report, self.model))

    def _count(self, kind: str, fn: Callable[..., Any], inputs: tuple, kwargs: dict) -> Any:
        frame = self._frame_for(kind)
        counter = OperationCounter(self.model, timesteps=self.timesteps_of(kind))
        counter.infer_batch_size((inputs, kwargs))
        with torch.no_grad(), counter:
            out = fn(*inputs, **kwargs)
        self._add(kind, frame, counter.report())
        return out

    def count_template(self, fn: Callable[..., Any], *inputs: Any, update: bool = False, **kwargs: Any) -> Any:
        """Run and count a template call (``update=True``: a template update); returns its output."""
        return self._count("template_update" if update else "template_init", fn, inputs, kwargs)

    def count_search(self, fn: Callable[..., Any], *inputs: Any, **kwargs: Any) -> Any:
        """Run and count one frame's search-branch call; returns its output."""
        return self._count("search", fn, inputs, kwargs)

    # ------------------------------------------------------------------------------------------ results
    def summary(self, frames: int | None = None, layers: bool = True) -> dict[str, Any]:
        """JSON-ready totals, per-kind totals, per-frame energies and (``layers``) per-kind layer tables.

        ``frames``: the sequence length (frames without a model call count as zero); default: last frame + 1.
        """
        run = self._running
        last = run.last_frame
        n = int(frames) if frames is not None else last + 1
        n = max(n, last + 1)
        total = dict(run.total)
        kinds = {k: dict(run.kinds[k]) for k in ALL_KINDS if k in KINDS or run.kinds[k]["calls"]}
        per_frame = []
        empty = dict.fromkeys(_TOTAL_KEYS, 0)
        for k in range(n):
            kinds_of_frame, t = run.frames.get(k, ([], empty))
            per_frame.append({"frame": k, "kinds": list(kinds_of_frame), "mac": t["mac"], "sop": t["sop"],
                              "energy_mj": t["energy_mj"]})
        per_t = list(run.per_t) if run.per_t is not None else [0] * self._per_t_length
        prof = get_profile(self.profile)
        out: dict[str, Any] = {
            "profile": prof.name,
            "profile_source": prof.source,
            "profile_note": prof.note,
            "include_residual": self.include_residual,
            "include_neuron": self.include_neuron,
            "timesteps": self.timesteps,
            **({"template_timesteps": self.template_timesteps}
               if self.template_timesteps and self.template_timesteps != self.timesteps else {}),
            "parameters": count_parameters(self.model),
            "frames": n,
            "total": total,
            "energy_mj_sequence": total["energy_mj"],
            "energy_mj_per_frame": total["energy_mj"] / n if n else 0.0,
            "firing_rate": total["spikes"] / total["neuron_updates"] if total["neuron_updates"] else None,
            "kinds": kinds,
            "per_timestep_sop": per_t,
            "per_frame": per_frame,
        }
        if layers:
            out["layers"] = {k: _finish_layers(run.layers[k]) for k in ALL_KINDS if k in run.layers}
        if self.memory:
            out.update(_memory_summary(run, total["energy_mj"], n, layers))
        return out


def _add_memory(run: _Running, kind: str, mem: MemoryReport) -> None:
    """Add one call's memory-aware energy to the running sums (totals, per kind, per layer)."""
    for key, value in mem.totals().items():
        run.memory[key] = run.memory.get(key, 0.0) + value
    run.memory_kinds[kind] = run.memory_kinds.get(kind, 0.0) + mem.total_mj
    rows = run.memory_layers.setdefault(kind, {})
    for r in mem.rows:
        row = rows.setdefault(r.name, {"name": r.name, "type": r.type, "input_kind": r.input_kind, "calls": 0,
                                       "weights": r.weights, "memory_pj": 0.0, "addressing_pj": 0.0})
        row["calls"] += 1
        row["memory_pj"] += r.memory_pj
        row["addressing_pj"] += r.addressing_pj


def _memory_summary(run: _Running, compute_mj: float, frames: int, layers: bool) -> dict[str, Any]:
    """The summary's memory-aware fields (new keys; the compute-only fields stay as they are)."""
    mem_mj = run.memory.get("total_pj", 0.0) * 1e-9
    out: dict[str, Any] = {
        "memory_model": LEMAIRE.source,
        "energy_mj_memory_sequence": mem_mj,
        "energy_mj_memory_per_frame": mem_mj / frames if frames else 0.0,
        "energy_mj_with_memory_sequence": compute_mj + mem_mj,
        "energy_mj_with_memory_per_frame": (compute_mj + mem_mj) / frames if frames else 0.0,
        "memory_total": dict(run.memory),
        "memory_kinds_mj": dict(run.memory_kinds),
    }
    if layers:
        out["memory_layers"] = {k: list(rows.values()) for k, rows in run.memory_layers.items()}
    return out
