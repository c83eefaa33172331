"""``spiketrack export`` and ``spiketrack deploy-report``: thin CLIs over :mod:`spiketrack.deploy`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    side.write_text(json.dumps(export.summary(), indent=2) + "\n")
    print(f"{len(export.graph.nodes)} nodes, {len(export.neurons)} LIF layers, input {list(export.input_shape)} "
          f"-> output {list(export.output_shape)}; {len(export.unsupported)} layers not expressible "
          f"(listed in {side}) -> {out}")
    return 0
