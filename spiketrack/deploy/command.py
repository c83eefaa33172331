"""``spiketrack export`` and ``spiketrack deploy-report``: thin CLIs over :mod:`spiketrack.deploy`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spiketrack.atomic import atomic_write_text


def add_arguments_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML of the spiking model")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    parser.add_argument("--format", choices=["nir"], default="nir", help="export format (nir)")
    parser.add_argument("--out", required=True, help="output file, e.g. model.nir")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square input side in pixels (default: the config's data.search_size)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run_export(args: argparse.Namespace) -> int:
    from spiketrack.config import load_config
    from spiketrack.deploy.nir_export import export_nir, write_nir
    from spiketrack.models.checkpoint import load_model
    from spiketrack.outputs import check_output_file

    cfg = load_config(args.config, list(args.set))
    out = check_output_file(Path(args.out), "NIR file")
    model = load_model(cfg, args.checkpoint)
    size = args.input_size or cfg.data.search_size
    export = export_nir(model, (size, size))
    write_nir(export, out)
    side = out.with_suffix(out.suffix + ".json")
    atomic_write_text(side, json.dumps(export.summary(), indent=2) + "\n")
    print(f"{len(export.graph.nodes)} nodes, {len(export.neurons)} LIF layers, input {list(export.input_shape)} "
          f"-> output {list(export.output_shape)}; {len(export.unsupported)} layers not expressible "
          f"(listed in {side}) -> {out}")
    return 0


def add_arguments_deploy_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML of the spiking model")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    parser.add_argument("--dataset", required=True, help="dataset folder whose sequences are tracked and counted")
    parser.add_argument("--split", default="test", help="split list (default: test; 'all' for every file)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--weight-bits", type=int, default=8, help="weight precision to map (default 8)")
    parser.add_argument("--quantize", action="store_true", help="fake-quantise the weights to --weight-bits first")
    parser.add_argument("--out", default="deploy_report", help="output folder (deploy_report.json/.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run_deploy_report(args: argparse.Namespace) -> int:
    from spiketrack.config import load_config
    from spiketrack.deploy.quantize import quantize_weights
    from spiketrack.deploy.report import build_deploy_report, measure_for_deploy, write_deploy_report
    from spiketrack.models.checkpoint import load_model
    from spiketrack.outputs import prepare_output_dir

    cfg = load_config(args.config, list(args.set))
    prepare_output_dir(args.out, "deploy report folder")
    model = load_model(cfg, args.checkpoint)
    if args.quantize:
        model = quantize_weights(model, args.weight_bits)
    split = None if args.split == "all" else args.split
    reports, templates, n_seq = measure_for_deploy(model, cfg, args.dataset, split=split, limit=args.limit)
    report = build_deploy_report(model, reports, timesteps=int(model.input_spec.timesteps or 1),
                                 weight_bits=args.weight_bits, template_calls=templates, sequences=n_seq)
    paths = write_deploy_report(report, args.out)
    for name, h in report["hardware"].items():
        print(f"{name}: {'fits' if h['fits'] else 'does not fit'} ({h['cores']} cores, {h['chips']} chip(s))")
    print(f"wrote {paths['md']}, {paths['json']}")
    return 0
