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
from collections.abc import Callable, Sequence
from pathlib import Path

from spiketrack import __version__
from spiketrack.errors import ConfigError, SpiketrackError, environment_error_message

# name -> (module, one-line help). Order is the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("spiketrack.data.command", "event data: synth | convert | info | validate"),
    "model": ("spiketrack.models.command", "model tools: summary (parameters, shapes, MACs)"),
    "train": ("spiketrack.train.command", "train a teacher or student from scratch"),
    "distill": ("spiketrack.train.command", "distil a spiking student from a frozen teacher"),
    "track": ("spiketrack.tracking.command", "track every sequence of a dataset and write result files"),
    "probe": ("spiketrack.evaluation.probe_command", "template-dependence probe: SR with real, zeroed, foreign templates"),
    "evaluate": ("spiketrack.evaluation.command", "SR/PR/NPR of result folders (EventVOT or pytracking protocol)"),
    "show": ("spiketrack.evaluation.show_command", "events, ground truth and tracker boxes as a GIF and worst frames"),
    "energy": ("spiketrack.energy.command", "per-sequence SOPs, MACs and energy of a model on a dataset"),
    "report": ("spiketrack.energy.command", "energy-accuracy report (JSON, Markdown, plot)"),
    "export": ("spiketrack.deploy.command", "export a spiking model to NIR (BN folded; its NIR-expressible subgraph)"),
    "deploy-report": ("spiketrack.deploy.command", "per-layer neurons, synapses, SOPs and fit on Loihi 2 / Speck / SpiNNaker2"),
    "quickstart": ("spiketrack.quickstart", "synthetic data -> teacher -> student -> track -> evaluate -> energy report"),
}


# What a command receives from a later layer, handed in here above every layer (tracking never imports energy):
# command -> {keyword of its run_<name>: (module, attribute path)}.
SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "track": {"meter": ("spiketrack.energy.meter", "EnergyMeter.from_config")},  # --energy
}


def _services(name: str) -> dict[str, object]:
    """The keyword arguments :data:`SERVICES` gives ``run_<name>`` (imported only now)."""
    out = {}
    for key, (module, path) in SERVICES.get(name, {}).items():
        obj: object = importlib.import_module(module)
        for part in path.split("."):
            obj = getattr(obj, part)
        out[key] = obj
    return out


def _load(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """``(add_arguments_<name>, run_<name>)`` of the command's module (imported only now)."""
    module = importlib.import_module(COMMANDS[name][0])
    attr = name.replace("-", "_")
    return getattr(module, f"add_arguments_{attr}"), getattr(module, f"run_{attr}")


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
            _load(name)[0](p)
    return parser


_BACKEND_KEY = "model.neuron.backend"
# quickstart: the student (the only spiking model) is configured here unless --set quickstart.student_config=...
_QUICKSTART_STUDENT = "configs/quickstart_student_conv.yaml"


def neuron_backend(args_list: Sequence[str]) -> str:
    """``model.neuron.backend`` of the spiking model the command line names ('auto' when none can be read).

    Read before any command module is imported (they import spikingjelly): the config given as ``--config PATH``
    or as a ``.yaml`` argument (quickstart: its student config) and ``--set model.neuron.backend=...`` (quickstart
    also ``student.model.neuron.backend=...``). An unreadable config is left to the command to report.
    """
    from spiketrack.config import load_config

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--set", dest="sets", action="append", default=[])
    known, rest = pre.parse_known_args(list(args_list))
    sets = {}
    for text in known.sets:
        key, _, value = text.partition("=")
        sets[key.strip()] = value
    path = known.config or next((a for a in rest if a.endswith((".yaml", ".yml"))), None)
    overrides = [f"{_BACKEND_KEY}={sets[k]}" for k in (_BACKEND_KEY, f"student.{_BACKEND_KEY}") if k in sets]
    if path is None and rest[:1] == ["quickstart"]:
        path = sets.get("quickstart.student_config", _QUICKSTART_STUDENT)
        if not Path(path).is_file():
            path = str(Path(__file__).resolve().parent.parent / path)
    try:
        return load_config(path, overrides[-1:]).model.neuron.backend
    except SpiketrackError:
        return "auto"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 failure, 2 usage/data error).

    First of all, spikingjelly's neuron implementation is chosen from the named config's
    ``model.neuron.backend`` (:mod:`spiketrack.models.spiking.backend`), before a command imports spikingjelly.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    from spiketrack.models.spiking.backend import select_backend

    try:
        select_backend(neuron_backend(args_list))
    except SpiketrackError as exc:
        print(f"spiketrack: error: {exc}", file=sys.stderr)
        return 2
    selected = next((a for a in args_list if not a.startswith("-")), None)
    selected = selected if selected in COMMANDS else None
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    run = _load(args.command)[1]
    try:
        code = int(run(args, **_services(args.command)) or 0)
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, inside the handler below
        return code
    except BrokenPipeError:
        return _closed_stdout()
    except SpiketrackError as exc:
        _close_progress_bars()
        text = str(exc)
        if isinstance(exc, ConfigError):
            from spiketrack.config import name_config_source

            text = name_config_source(text)
        print(f"spiketrack {args.command}: error: {' '.join(text.split())}", file=sys.stderr)
        return 2
    except OSError as exc:
        # the user's environment (disk full, read-only or not-a-folder output, no permission): one line, exit 2;
        # any other OS error is a bug and keeps its traceback
        message = environment_error_message(exc)
        if message is None:
            raise
        _close_progress_bars()
        print(f"spiketrack {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiketrack {args.command}: interrupted", file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """Close the progress bars an error left open, so the error message starts on a line of its own."""
    std = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", None) or ()):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass


def _closed_stdout() -> int:
    """The reader of stdout went away (``spiketrack model summary ... | head``): stop quietly, as ``cat`` does."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush must not raise again
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
