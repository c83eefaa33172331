"""Energy of a model over every sequence of a dataset: the library behind ``spiketrack energy``.

Each sequence is tracked with the online tracker through the runner's own path
(:func:`spiketrack.tracking.runner.run_sequence` with :meth:`EnergyMeter.from_config` as meter factory, as
``spiketrack track --energy`` does), so the counted inputs are the crops the tracker really sees. The result
(JSON-ready dict) holds the per-sequence summaries and an ``overall`` block: operations and energy per frame
(all calls of all sequences divided by all frames), mean energy per sequence, firing rate, and the per-layer
table of the search branch per frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn
from tqdm import tqdm

from spiketrack.atomic import atomic_write_text
from spiketrack.data.sequence import Sequence
from spiketrack.energy.checks import check_energy_values
from spiketrack.energy.meter import EnergyMeter, count_parameters
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.tracking.meter import TUNING_KIND
from spiketrack.tracking.runner import SequenceResult, TrackerSource, run_sequence

ENERGY_FORMAT = "spiketrack-energy"


def sequence_energy(
    model: nn.Module, sequence: Sequence, cfg: Any, *, device: str = "cpu", meter: EnergyMeter | None = None
) -> tuple[dict[str, Any], SequenceResult]:
    """Track ``sequence`` with the online tracker (ground truth used only for frame 0's box) and count it.

    Returns ``(summary, result)``: the :meth:`EnergyMeter.summary` dict and the tracker's
    ``SequenceResult`` (boxes, times). The teacher is counted the same way (T = 1). ``meter``: count into this
    meter instead of a fresh one of :meth:`EnergyMeter.from_config`.
    """
    factory = EnergyMeter.from_config if meter is None else (lambda _model, _cfg: meter)
    result = run_sequence(TrackerSource(cfg, model=model, device=device, meter=factory), sequence)
    assert result.energy is not None  # a model source with a meter factory always has a meter
    return result.energy, result


def overall_from_sequences(sequences: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Dataset totals from per-sequence summaries (EnergyMeter or tracker meter format: ``total`` + ``frames``)."""
    frames = sum(int(s["frames"]) for s in sequences.values())
    keys = ("mac", "sop", "sop_paper", "energy_mj", "energy_mj_paper", "neuron_updates", "spikes", "residual_adds")
    tot = {k: float(sum(s["total"].get(k, 0) for s in sequences.values())) for k in keys}
    n_seq = len(sequences)
    updates = tot["neuron_updates"]
    out = {
        "sequences": n_seq,
        "frames": frames,
        "total": tot,
        "mac_per_frame": tot["mac"] / frames if frames else 0.0,
        "sop_per_frame": tot["sop"] / frames if frames else 0.0,
        "sop_paper_per_frame": tot["sop_paper"] / frames if frames else 0.0,
        "energy_mj_per_frame": tot["energy_mj"] / frames if frames else 0.0,
        "energy_mj_paper_per_frame": tot["energy_mj_paper"] / frames if frames else 0.0,
        "energy_mj_per_sequence": tot["energy_mj"] / n_seq if n_seq else 0.0,
        "firing_rate": tot["spikes"] / updates if updates else None,
    }
    # test-time tuning is a one-off cost per sequence: charged once, and also given apart from the tracking cost
    tuning = sum(float(s.get("kinds", {}).get(TUNING_KIND, {}).get("energy_mj", 0.0)) for s in sequences.values())
    if tuning:
        out["energy_mj_tuning_per_sequence"] = tuning / n_seq
        out["energy_mj_per_frame_without_tuning"] = (tot["energy_mj"] - tuning) / frames if frames else 0.0
    if sequences and all("energy_mj_memory_sequence" in s for s in sequences.values()):  # measured with memory
        mem = sum(float(s["energy_mj_memory_sequence"]) for s in sequences.values())
        out["energy_mj_memory_per_frame"] = mem / frames if frames else 0.0
        out["energy_mj_with_memory_per_frame"] = (tot["energy_mj"] + mem) / frames if frames else 0.0
    return out


def search_layers_per_frame(sequences: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-layer operations of the search branch averaged per search call over all sequences."""
    rows: dict[str, dict[str, Any]] = {}
    calls = 0
    for s in sequences.values():
        calls += int(s.get("kinds", {}).get("search", {}).get("calls", 0))
        for lay in s.get("layers", {}).get("search", []):
            row = rows.setdefault(lay["name"], {"name": lay["name"], "type": lay["type"],
                                                "input_kind": lay["input_kind"], "mac": 0.0, "sop": 0.0,
                                                "sop_paper": 0.0, "_fr": []})
            row["mac"] += lay["mac"]
            row["sop"] += lay["sop"]
            row["sop_paper"] += lay["sop_paper"]
            if lay.get("firing_rate") is not None:
                row["_fr"].append(lay["firing_rate"])
    out = []
    for row in rows.values():
        fr = row.pop("_fr")
        for k in ("mac", "sop", "sop_paper"):
            row[k] = row[k] / calls if calls else 0.0
        row["firing_rate"] = sum(fr) / len(fr) if fr else None
        out.append(row)
    return out


def measure_dataset(
    model: nn.Module,
    cfg: Any,
    dataset_dir: str | Path,
    split: str | None = "test",
    device: str = "cpu",
    progress: bool = True,
    limit: int | None = None,
    memory: bool = False,
) -> dict[str, Any]:
    """Track and count every sequence of ``split`` of ``dataset_dir``; returns the energy JSON dict.

    ``memory``: add the memory-aware energy (:mod:`spiketrack.energy.memory`) as new fields.
    """
    from spiketrack.data.dataset import SequenceDataset

    dataset = SequenceDataset(dataset_dir)
    names = dataset.names(split)
    if limit is not None:
        names = names[: int(limit)]
    if not names:
        raise DataFormatError(dataset_dir, split, "no sequences in this split")
    model = model.to(device).eval()
    sequences: dict[str, dict[str, Any]] = {}
    for name in tqdm(names, unit="seq", desc="energy", disable=not progress):
        with dataset.open(name) as seq:
            meter = None
            if memory:
                meter = EnergyMeter.from_config(model, cfg)
                meter.memory = True
            sequences[name], _ = sequence_energy(model, seq, cfg, device=device, meter=meter)
    prof = sequences[names[0]]
    return {
        "format": ENERGY_FORMAT,
        "version": 1,
        "dataset": str(dataset_dir),
        "split": split,
        "model": {"kind": cfg.model.kind, "variant": cfg.model.variant, "timesteps": prof["timesteps"],
                  "parameters": count_parameters(model)},
        "profile": prof["profile"],
        "profile_source": prof["profile_source"],
        "profile_note": prof["profile_note"],
        "overall": overall_from_sequences(sequences),
        "search_layers_per_frame": search_layers_per_frame(sequences),
        "sequences": sequences,
    }


def write_energy(data: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, json.dumps(data, indent=1))
    return p


def read_energy(path: str | Path) -> dict[str, Any]:
    """Read an energy JSON written by ``spiketrack energy`` (DataFormatError naming the file otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(p, None, "energy JSON not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(p, None, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != ENERGY_FORMAT:
        raise DataFormatError(p, "format", f"expected '{ENERGY_FORMAT}' (a file written by `spiketrack energy`)")
    check_energy_values(p, data)
    return data


def energy_from_results(results_dir: str | Path) -> dict[str, Any]:
    """Energy dict assembled from the ``<sequence>_energy.json`` files of ``spiketrack track --energy``."""
    d = Path(results_dir)
    files = sorted(d.glob("*_energy.json"))
    if not files:
        raise ConfigError(f"{d}: no <sequence>_energy.json files (run `spiketrack track --energy` or give :ENERGY_JSON)")
    sequences = {}
    for f in files:
        try:
            s = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise DataFormatError(f, None, f"not valid JSON ({exc})") from None
        if not isinstance(s, dict) or "total" not in s or "frames" not in s:
            raise DataFormatError(f, "total", "expected a per-sequence energy summary with 'total' and 'frames'")
        check_energy_values(f, s)
        sequences[f.name[: -len("_energy.json")]] = s
    first = next(iter(sequences.values()))
    return {
        "format": ENERGY_FORMAT,
        "version": 1,
        "dataset": None,
        "split": None,
        "model": {"parameters": first.get("parameters"), "timesteps": first.get("timesteps")},
        "profile": first.get("profile"),
        "profile_source": first.get("profile_source"),
        "overall": overall_from_sequences(sequences),
        "search_layers_per_frame": search_layers_per_frame(sequences),
        "sequences": sequences,
    }
