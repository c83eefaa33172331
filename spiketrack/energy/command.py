"""``spiketrack energy`` and ``spiketrack report``: thin CLIs over :mod:`spiketrack.energy.dataset` and
:mod:`spiketrack.energy.report`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spiketrack.energy.profiles import PROFILES
from spiketrack.evaluation.protocols import PROTOCOLS


def add_arguments_energy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML of the model (teacher or student)")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt) to count")
    parser.add_argument("--dataset", required=True, help="dataset folder (native sequence files + split lists)")
    parser.add_argument("--split", default="test", help="split list to use (default: test; 'all' for every file)")
    parser.add_argument("--out", default=None, help="energy JSON to write (default: <dataset>_energy.json here)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None, help="energy profile (default: config)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--memory", action="store_true",
                        help="also the memory-aware energy (weight/potential memory accesses, Lemaire et al. 2022); "
                             "the config key energy.memory: true does the same")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run_energy(args: argparse.Namespace) -> int:
    from spiketrack.config import load_config
    from spiketrack.device import resolve_device
    from spiketrack.energy.dataset import measure_dataset, write_energy
    from spiketrack.models.checkpoint import load_checkpoint_as
    from spiketrack.outputs import check_output_file_possible

    cfg = load_config(args.config, list(args.set))
    out = check_output_file_possible(Path(args.out) if args.out else Path(f"{Path(args.dataset).name}_energy.json"),
                            "energy JSON")  # before minutes of counting
    if args.profile:
        cfg.energy.profile = args.profile
    device = resolve_device(args.device)
    model = load_checkpoint_as(cfg, args.checkpoint, device=device)
    split = None if args.split == "all" else args.split
    data = measure_dataset(model, cfg, args.dataset, split=split, device=device, limit=args.limit, memory=args.memory)
    write_energy(data, out)
    ov = data["overall"]
    print(f"{ov['sequences']} sequences, {ov['frames']} frames: {ov['mac_per_frame'] / 1e9:.4f} GMAC/frame, "
          f"{ov['sop_per_frame'] / 1e9:.4f} GSOP/frame, {ov['energy_mj_per_frame']:.4f} mJ/frame "
          f"({data['profile']}); mean {ov['energy_mj_per_sequence']:.4f} mJ/sequence -> {out}")
    return 0


def add_arguments_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset folder with ground truth")
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RESULTS_DIR[:ENERGY_JSON]",
                        help="one tracker: its results folder and energy JSON (default: <seq>_energy.json files "
                             "in the results folder); repeat for several")
    parser.add_argument("--out", required=True, help="report folder, e.g. energy_reports/NAME")
    parser.add_argument("--split", default="test", help="split list (default: test; 'all' for every file)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="eventvot",
                        help="evaluation protocol: eventvot | pytracking")
    parser.add_argument("--allow-missing", action="store_true", help="count missing result files as failures")
    parser.add_argument("--probe", action="append", default=[], metavar="NAME=PROBE_DIR",
                        help="template-dependence probe folder of run NAME (spiketrack probe template --out): "
                             "adds its SR drops as columns; repeatable")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=RESULTS_DIR",
                        help="results folder of a non-learned tracker (no model, no energy, e.g. spiketrack track "
                             "--tracker baseline): an accuracy-only row and a line in the plot; repeatable")


def report_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~spiketrack.energy.report.build_report` call of ``spiketrack report ARGS`` (written by the caller)."""
    from spiketrack.energy.report import RunSpec, build_report
    from spiketrack.outputs import check_output_dir_possible

    runs = [RunSpec.parse(r) for r in args.run]
    probes = _named_folders(args.probe, "--probe", "PROBE_DIR")
    baselines = _named_folders(args.baseline, "--baseline", "RESULTS_DIR")
    check_output_dir_possible(args.out, "report folder")  # before the evaluation; write_report makes it
    split = None if args.split == "all" else args.split
    return build_report(args.dataset, runs, split=split, protocol=args.protocol, allow_missing=args.allow_missing,
                        probes=probes, baselines=baselines)


def _named_folders(texts: list[str], option: str, what: str) -> dict[str, Path]:
    """``NAME=FOLDER`` arguments of a repeatable option -> {name: folder}."""
    from spiketrack.errors import ConfigError

    out = {}
    for text in texts:
        name, sep, folder = text.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"{option} '{text}': expected NAME={what}")
        out[name] = Path(folder)
    return out


def run_report(args: argparse.Namespace) -> int:
    from spiketrack.energy.report import write_report

    report = report_from_args(args)
    paths = write_report(report, args.out)
    for r in report["runs"]:
        print(f"{r['tracker']}: SR {r['SR']:.1f}  {r['energy_mj_per_frame']:.4f} mJ/frame")
    print(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")
    return 0
