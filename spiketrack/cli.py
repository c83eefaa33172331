"""Command-line entry point: `spiketrack COMMAND ...`.

The CLI is thin: each command lives in a ``command`` module of its package, which parses its
arguments and calls a library function a user can call from Python with the same result.
A command module provides ``add_arguments_<name>(parser)`` and ``run_<name>(args) -> int``.
Only the chosen command's module is imported, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from spiketrack import __version__
from spiketrack.errors import SpiketrackError

# name -> (module, one-line help). Order is the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("spiketrack.data.command", "event data: synth | convert | info | validate"),
    "model": ("spiketrack.models.command", "model tools: summary (parameters, shapes, MACs)"),
    "train": ("spiketrack.train.command", "train a teacher or student from scratch"),
    "distill": ("spiketrack.train.command", "distil a spiking student from a frozen teacher"),
    "track": ("spiketrack.tracking.command", "track every sequence of a dataset and write result files"),
    "probe": ("spiketrack.tracking.probe_command", "template-dependence probe: SR with real, zeroed, foreign templates"),
    "evaluate": ("spiketrack.evaluation.command", "SR/PR/NPR of result folders (EventVOT or pytracking protocol)"),
    "energy": ("spiketrack.energy.command", "per-sequence SOPs, MACs and energy of a model on a dataset"),
    "report": ("spiketrack.energy.command", "energy-accuracy report (JSON, Markdown, plot)"),
    "quickstart": ("spiketrack.quickstart", "synthetic data -> teacher -> student -> track -> evaluate -> energy report"),
}


def _load(name: str):
    module_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    add = getattr(module, f"add_arguments_{name}", None)
    run = getattr(module, f"run_{name}", None)
    if add is None or run is None:
        return None
    return add, run


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """Parser with every command listed; only ``selected`` gets its full arguments."""
    parser = argparse.ArgumentParser(
        prog="spiketrack",
        description="Energy-efficient object tracking with event cameras and spiking neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"spiketrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            loaded = _load(name)
            if loaded is not None:
                loaded[0](p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 failure, 2 usage/data error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in args_list if not a.startswith("-")), None)
    selected = selected if selected in COMMANDS else None
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    loaded = _load(args.command)
    if loaded is None:
        print(f"spiketrack {args.command}: not built yet in this version", file=sys.stderr)
        return 2
    try:
        return int(loaded[1](args) or 0)
    except SpiketrackError as exc:
        print(f"spiketrack {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiketrack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
