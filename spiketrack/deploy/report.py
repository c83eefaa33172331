"""Deploy report: per layer neurons, fan-in, synapses, weights and their bits, spikes and SOPs per frame,
memory-aware energy, and for each hardware profile (:mod:`spiketrack.deploy.hardware`) whether the layer fits,
the cores it needs, and the network's energy and latency per frame.

The numbers come from tracking real sequences: every search-branch call is counted
(:class:`~spiketrack.energy.meter.EnergyMeter` with its per-call reports kept) and averaged per search call
(= per frame; the template is encoded once per sequence and reported separately as calls, not per frame).
Layers are marked by whether they are in the NIR-exportable subgraph (:mod:`spiketrack.deploy.nir_export`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch import nn

from spiketrack.atomic import atomic_write_text
from spiketrack.deploy.hardware import mappable_hardware, network_fit
from spiketrack.energy.memory import memory_report
from spiketrack.energy.operations import OperationReport


def _module(model: nn.Module, name: str) -> nn.Module | None:
    return dict(model.named_modules()).get(name.split("#")[0])


def layer_rows(model: nn.Module, reports: list[OperationReport], weight_bits: int = 32) -> list[dict[str, Any]]:
    """Per-layer deploy rows averaged over ``reports`` (one per search call = per frame)."""
    rows: dict[str, dict[str, Any]] = {}
    n = max(len(reports), 1)
    for rep in reports:
        mem = {r.name: r for r in memory_report(rep, model).rows}
        for lay in rep.layers:
            mod = _module(model, lay.name)
            t = lay.timesteps or 1
            out_numel = math.prod(lay.output_shape)
            neurons = out_numel // t if lay.timesteps else out_numel
            row = rows.get(lay.name)
            if row is None:
                weight = getattr(mod, "weight", None)
                is_conv = isinstance(mod, nn.Conv2d)
                fan_in = (lay.dense_mac // out_numel) if out_numel else 0
                row = rows[lay.name] = {
                    "name": lay.name, "type": lay.type, "input_kind": lay.input_kind,
                    "neurons": int(neurons), "fan_in": int(fan_in), "synapses": int(neurons * fan_in),
                    "weights": int(weight.numel()) if weight is not None else 0,
                    "weight_bits": weight_bits if weight is not None else None,
                    "kernel": list(mod.kernel_size) if is_conv else None,
                    "out_channels": int(mod.out_channels) if is_conv else (int(mod.out_features) if isinstance(mod, nn.Linear) else 0),
                    "out_hw": list(lay.output_shape[-2:]) if is_conv else None,
                    "spikes_in_per_frame": 0.0, "sop_per_frame": 0.0, "mac_per_frame": 0.0, "memory_pj_per_frame": 0.0,
                }
            if lay.input_kind != "dense":
                row["spikes_in_per_frame"] += (lay.firing_rate or 0.0) * math.prod(lay.input_shape) / n
            row["sop_per_frame"] += lay.sop / n
            row["mac_per_frame"] += lay.mac / n
            if lay.name in mem:
                row["memory_pj_per_frame"] += mem[lay.name].total_pj / n
    return list(rows.values())


def _exportable(model: nn.Module, rows: list[dict[str, Any]]) -> set[str]:
    """Names of the weight layers inside the NIR-exportable subgraph (empty when the export refuses)."""
    try:
        from spiketrack.deploy.nir_export import export_nir

        graph = export_nir(model, (64, 64)).graph
    except Exception:  # noqa: BLE001 - any refusal (I-LIF, missing nir) means: nothing exportable
        return set()
    nodes = set(graph.nodes)  # weight nodes are named by the conv+BN module; the counter names its inner conv
    return {r["name"] for r in rows if r["name"] in nodes or r["name"].split("#")[0].rsplit(".", 1)[0] in nodes}


def build_deploy_report(model: nn.Module, reports: list[OperationReport], *, timesteps: int,
                        weight_bits: int = 8, template_calls: int = 0, sequences: int = 0) -> dict[str, Any]:
    """The deploy report dict from the search-call reports of tracked sequences."""
    rows = layer_rows(model, reports, weight_bits)
    exportable = _exportable(model, rows)
    for r in rows:
        r["nir_exportable"] = r["name"] in exportable
    mappable = [r for r in rows if r["weights"]]  # weight layers (spike x spike products have no weights)
    return {
        "frames": len(reports),
        "sequences": sequences,
        "template_calls": template_calls,
        "timesteps": timesteps,
        "weight_bits": weight_bits,
        "layers": rows,
        "not_mappable": [r["name"] for r in rows if not r["weights"]],
        "hardware": {name: network_fit(hw, mappable, weight_bits, timesteps) for name, hw in mappable_hardware().items()},
        "totals": {
            "neurons": sum(r["neurons"] for r in rows),
            "weights": sum(r["weights"] for r in rows),
            "sop_per_frame": sum(r["sop_per_frame"] for r in rows),
            "mac_per_frame": sum(r["mac_per_frame"] for r in rows),
            "memory_mj_per_frame": sum(r["memory_pj_per_frame"] for r in rows) * 1e-9,
        },
    }


def _num(x: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def render_markdown(report: dict[str, Any]) -> str:
    """deploy_report.md: the layer table and one fit table per hardware profile."""
    names = list(report["hardware"])
    lines = ["# Deploy report", "",
             f"{report['frames']} frames of {report['sequences']} sequences, T = {report['timesteps']}, "
             f"weights {report['weight_bits']} bits. Per frame = per search call.", "",
             "| layer | type | input | NIR | neurons | fan-in | synapses | weights | spikes in/frame | SOP/frame | "
             "MAC/frame | memory pJ/frame | " + " | ".join(f"{n} cores" for n in names) + " |",
             "|" + "---|" * (12 + len(names))]
    fits = {n: {f["layer"]: f for f in report["hardware"][n]["layers"]} for n in names}
    for r in report["layers"]:
        cells = []
        for n in names:
            f = fits[n].get(r["name"])
            cells.append("-" if f is None else f"{f['cores']}" + ("" if f["fits"] else " (no)"))
        lines.append(
            f"| {r['name']} | {r['type']} | {r['input_kind']} | {'yes' if r['nir_exportable'] else 'no'} | {r['neurons']} | "
            f"{r['fan_in']} | {r['synapses']} | {r['weights']} | {r['spikes_in_per_frame']:.0f} | {r['sop_per_frame']:.0f} | "
            f"{r['mac_per_frame']:.0f} | {r['memory_pj_per_frame']:.0f} | " + " | ".join(cells) + " |")
    lines += ["", "| hardware | fits | cores | chips | energy mJ/frame | latency ms/frame | why not |", "|---|---|---|---|---|---|---|"]
    for n in names:
        h = report["hardware"][n]
        lines.append(f"| {n} | {'yes' if h['fits'] else 'no'} | {h['cores']} | {h['chips']} | "
                     f"{_num(h['energy_mj_per_frame'], '{:.3g}')} | {_num(h['latency_ms_per_frame'], '{:.3g}')} | "
                     f"{'; '.join(h['reasons'][:4]) + (' ...' if len(h['reasons']) > 4 else '')} |")
    lines += ["", "Sources:", ""] + [f"- {n}: {report['hardware'][n]['source']} ({report['hardware'][n]['notes']})" for n in names]
    return "\n".join(lines) + "\n"


def write_deploy_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "deploy_report.json", "md": out / "deploy_report.md"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2) + "\n")
    atomic_write_text(paths["md"], render_markdown(report))
    return paths


def measure_for_deploy(model: nn.Module, cfg: Any, dataset_dir: str | Path, split: str | None = "test",
                       limit: int | None = None, device: str = "cpu") -> tuple[list[OperationReport], int, int]:
    """Track the sequences and return the search-call reports, the template calls and the sequence count."""
    from spiketrack.data.dataset import SequenceDataset
    from spiketrack.energy.dataset import sequence_energy
    from spiketrack.energy.meter import EnergyMeter
    from spiketrack.errors import DataFormatError

    dataset = SequenceDataset(dataset_dir)
    names = dataset.names(split)[: limit if limit is not None else None]
    if not names:
        raise DataFormatError(dataset_dir, split, "no sequences in this split")
    reports: list[OperationReport] = []
    templates = 0
    for name in names:
        meter = EnergyMeter.from_config(model, cfg)
        meter.keep_records = True
        with dataset.open(name) as seq:
            sequence_energy(model, seq, cfg, device=device, meter=meter)
        reports += [r.report for r in meter.records if r.kind == "search"]
        templates += sum(r.kind != "search" for r in meter.records)
    return reports, templates, len(names)


__all__ = ["build_deploy_report", "layer_rows", "measure_for_deploy", "render_markdown", "write_deploy_report"]
