"""``spiketrack export`` and ``spiketrack deploy-report``: thin CLIs over :mod:`spiketrack.deploy`.

Every argument is checked before the model is loaded or a file is written: the model must be spiking (the ANN
teacher has nothing to map onto neuromorphic cores), sizes and bit widths must be in range, an input size that
would need more memory than the machine has is refused with the estimate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spiketrack.atomic import atomic_write_text
from spiketrack.errors import ConfigError

FEATURE_STRIDE = 16  # the students' feature stride: an input side must be a multiple of it
MAX_WEIGHT_BITS = 32  # weights wider than float32's are not a deployment precision
QUANTIZE_BITS = (2, 16)  # symmetric codes need 2 bits; above 16 the fake quantisation is float in all but name


def _spiking_config(cfg: Any, command: str) -> None:
    """Refuse the ANN teacher before loading it: it has no spiking layers to export or map onto cores."""
    if cfg.model.kind != "student":
        raise ConfigError(
            f"key 'model.kind': {command} needs a spiking model (a student); this config is the ANN "
            f"{cfg.model.kind!r}, whose dense layers have no neurons to map onto neuromorphic cores"
        )


def parse_template(text: str) -> tuple[Path, int]:
    """``SEQ[:FRAME]`` -> (sequence file, frame index; default 0), checked: the file opens, the frame exists and
    shows the target (a ground-truth box)."""
    from spiketrack.data.h5seq import open_sequence

    path, frame = text, 0
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit():
        path, frame = head, int(tail)
    if not path or not Path(path).is_file():
        raise ConfigError(f"--template {text!r}: expected SEQUENCE_FILE[:FRAME] naming a sequence file (.h5)")
    with open_sequence(path) as seq:
        if frame >= seq.num_frames:
            raise ConfigError(f"--template {text!r}: the sequence has frames 0..{seq.num_frames - 1}")
        box = seq.boxes[frame]
        if seq.absent[frame] or not (box[2] > 0 and box[3] > 0):
            raise ConfigError(f"--template {text!r}: the target is absent in frame {frame}; choose a frame with a box")
    return Path(path), frame


def template_kernel(model: Any, cfg: Any, path: Path, frame: int) -> Any:
    """The deployable student's correlation kernel [1, C, k, k] of the template crop around the ground-truth box
    of ``frame`` of sequence file ``path``: the crop the tracker encodes (``data.template_factor``, ``size``)."""
    import torch

    from spiketrack.data.crop import CropWindow
    from spiketrack.data.h5seq import open_sequence
    from spiketrack.data.inputs import batch_inputs, build_input

    with open_sequence(path) as seq:
        t0, t1 = seq.frame_window(frame)
        window = CropWindow.around(seq.boxes[frame], cfg.data.template_factor)
        item = build_input(model.input_spec, seq.frame_events(frame), t0, t1, window, cfg.data.template_size,
                           template=True)
    with torch.no_grad():
        return model.encode_template(batch_inputs([item]))


def add_arguments_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML of the spiking model")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    parser.add_argument("--format", choices=["nir"], default="nir", help="export format (nir)")
    parser.add_argument("--out", required=True, help="output file, e.g. model.nir")
    parser.add_argument("--input-size", type=int, default=None,
                        help=f"square input side in pixels, a multiple of {FEATURE_STRIDE} "
                             "(default: the config's data.search_size)")
    parser.add_argument("--template", default=None, metavar="SEQ[:FRAME]",
                        help="deployable student: encode the template crop around the box of FRAME (default 0) of "
                             "sequence file SEQ, so the exported correlation conv carries that target's kernel")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def _check_input_size(size: int) -> None:
    if size <= 0 or size % FEATURE_STRIDE:
        raise ConfigError(f"--input-size {size}: expected a positive multiple of {FEATURE_STRIDE} (the student's "
                          "feature stride)")


def _export_memory(model: Any, size: int) -> float:
    """Bytes the NIR graph of a ``size`` x ``size`` input needs: the graph is built at 64 x 64 and its per-neuron
    arrays (which grow with the area; weights do not) are scaled to the requested side."""
    import numpy as np

    from spiketrack.deploy.nir_export import export_nir

    small = export_nir(model, (64, 64)).graph
    per_area = weights = 0
    for name, node in small.nodes.items():
        arrays = [v for v in vars(node).values() if isinstance(v, np.ndarray)]
        nbytes = sum(a.nbytes for a in arrays)
        if name in ("input", "output"):
            continue
        if type(node).__name__ == "LIF":
            per_area += nbytes
        else:
            weights += nbytes
    # x2: the arrays and, at most as large, the in-memory HDF5 file written from them (write_nir)
    return (weights + per_area * (size / 64) ** 2) * 2


def run_export(args: argparse.Namespace) -> int:
    from spiketrack.config import load_config
    from spiketrack.deploy.nir_export import ExportError, export_nir, write_nir
    from spiketrack.models.checkpoint import load_model
    from spiketrack.models.spiking.deployable import DeployableStudent
    from spiketrack.outputs import check_output_file
    from spiketrack.resources import check_memory

    cfg = load_config(args.config, list(args.set))
    _spiking_config(cfg, "export")
    size = args.input_size if args.input_size is not None else cfg.data.search_size
    _check_input_size(size)
    template = parse_template(args.template) if args.template is not None else None
    out = check_output_file(Path(args.out), "NIR file")
    model = load_model(cfg, args.checkpoint)
    if template is not None and not isinstance(model, DeployableStudent):
        raise ConfigError("--template: only the deployable student's exported graph has a template correlation "
                          "(model.variant: deployable); this model's NIR subgraph does not depend on the template")
    check_memory(_export_memory(model, size), f"--input-size {size}: the NIR graph")
    kernel = template_kernel(model, cfg, *template) if template is not None else None
    try:
        export = export_nir(model, (size, size), template=kernel)
    except ExportError as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    if template is not None:
        export.graph.metadata["template"] = f"{template[0]} frame {template[1]}"
    write_nir(export, out)
    side = out.with_suffix(out.suffix + ".json")
    atomic_write_text(side, json.dumps(export.summary(), indent=2) + "\n")
    note = "; correlation weights: a placeholder (give --template)" if export.placeholder_template else ""
    print(f"{len(export.graph.nodes)} nodes, {len(export.neurons)} LIF layers, input {list(export.input_shape)} "
          f"-> output {list(export.output_shape)}; {len(export.unsupported)} layers not expressible "
          f"(listed in {side}){note} -> {out}")
    return 0


def add_arguments_deploy_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML of the spiking model")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    parser.add_argument("--dataset", required=True, help="dataset folder whose sequences are tracked and counted")
    parser.add_argument("--split", default="test", help="split list (default: test; 'all' for every file)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--weight-bits", type=int, default=8,
                        help=f"weight precision to map, 1..{MAX_WEIGHT_BITS} (default 8; with --quantize "
                             f"{QUANTIZE_BITS[0]}..{QUANTIZE_BITS[1]})")
    parser.add_argument("--quantize", action="store_true", help="fake-quantise the weights to --weight-bits first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] for tracking the sequences (default cpu)")
    parser.add_argument("--out", default="deploy_report", help="output folder (deploy_report.json/.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def check_weight_bits(bits: int, quantize: bool) -> None:
    """``--weight-bits`` in 1..32 (2..16 with ``--quantize``: a symmetric code needs 2 bits)."""
    low, high = QUANTIZE_BITS if quantize else (1, MAX_WEIGHT_BITS)
    if not low <= bits <= high:
        what = "--quantize needs" if quantize else "expected"
        raise ConfigError(f"--weight-bits {bits}: {what} {low}..{high} bits")


def run_deploy_report(args: argparse.Namespace) -> int:
    from spiketrack.config import load_config
    from spiketrack.deploy.quantize import quantize_weights
    from spiketrack.deploy.report import build_deploy_report, measure_for_deploy, write_deploy_report
    from spiketrack.device import resolve_device
    from spiketrack.models.checkpoint import load_model
    from spiketrack.models.spiking.neurons import SpikingNeuron
    from spiketrack.outputs import prepare_output_dir

    cfg = load_config(args.config, list(args.set))
    _spiking_config(cfg, "deploy-report")
    check_weight_bits(args.weight_bits, args.quantize)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: expected at least 1 sequence")
    device = resolve_device(args.device)
    prepare_output_dir(args.out, "deploy report folder")
    model = load_model(cfg, args.checkpoint)
    if not any(isinstance(m, SpikingNeuron) for m in model.modules()):
        raise ConfigError(f"{args.checkpoint}: the model has no spiking neurons; deploy-report maps spiking layers")
    if args.quantize:
        model = quantize_weights(model, args.weight_bits)
    split = None if args.split == "all" else args.split
    reports, templates, n_seq = measure_for_deploy(model, cfg, args.dataset, split=split, limit=args.limit,
                                                   device=device)
    report = build_deploy_report(model, reports, timesteps=int(model.input_spec.timesteps or 1),
                                 weight_bits=args.weight_bits, template_calls=templates, sequences=n_seq)
    report["device"] = device
    paths = write_deploy_report(report, args.out)
    for name, h in report["hardware"].items():
        print(f"{name}: {'fits' if h['fits'] else 'does not fit'} ({h['cores']} cores, {h['chips']} chip(s))")
    print(f"wrote {paths['md']}, {paths['json']}")
    return 0
