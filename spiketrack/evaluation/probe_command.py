"""``spiketrack probe template``: the template-dependence probe (thin CLI over :mod:`spiketrack.evaluation.probe`)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from spiketrack.errors import ConfigError
from spiketrack.tracking.command import add_tracker_arguments

if TYPE_CHECKING:
    from spiketrack.evaluation.probe import ProbeResult


def add_arguments_probe(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="probe_command", metavar="PROBE", required=True)
    p = sub.add_parser("template", help="SR with the real, a zeroed and a foreign template, and the drops")
    add_tracker_arguments(p)
    p.add_argument("--dataset", required=True, help="dataset folder of <name>.h5 files and split lists")
    p.add_argument("--split", default="test", help="split list (default: test; 'all' = every file)")
    p.add_argument("--out", required=True, help="probe folder: <mode>/ result folders, probe.json, probe.md")
    p.add_argument("--modes", default="zeroed,foreign", help="probed templates, comma separated (zeroed,foreign)")
    p.add_argument("--attribute", action="append", default=[], metavar="CODE",
                   help="also report the sequences with this attribute (e.g. MO); repeatable")
    p.add_argument("--real-results", default=None, metavar="DIR",
                   help="results folder of this tracker on this split (spiketrack track --out) to use as the real "
                   "template's instead of tracking it again")
    p.add_argument("--name", default=None, help="tracker name in the tables (default: checkpoint file stem)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes on CPU (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--protocol", default="eventvot", help="evaluation protocol: eventvot | pytracking")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def probe_from_args(args: argparse.Namespace, progress: bool | None = None) -> ProbeResult:
    """The :func:`~spiketrack.evaluation.probe.probe_template` call of ``spiketrack probe template ARGS``."""
    from spiketrack.evaluation.probe import probe_template
    from spiketrack.tracking.command import command_config, command_tracker

    cfg = command_config(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    out = Path(args.out)
    existed = out.exists()
    try:
        return probe_template(
            cfg, command_tracker(args), args.dataset,
            split=None if args.split == "all" else args.split, out=args.out, modes=modes,
            attributes=tuple(args.attribute), name=args.name, workers=args.workers, device=args.device,
            protocol=args.protocol, progress=not args.quiet if progress is None else progress,
            real_results=args.real_results,
        )
    except BaseException:
        _remove_empty_folders(out, existed)
        raise


def _remove_empty_folders(out: Path, existed: bool) -> None:
    """After a failed probe: the ``<mode>/`` folders left empty (no result was finished in them), and ``out`` when
    this run made it and nothing is left in it; folders holding results stay (a re-run resumes them)."""
    from spiketrack.evaluation.probe import MODES

    for mode in MODES:
        with contextlib.suppress(OSError):
            (out / mode).rmdir()  # only when empty
    if not existed:
        with contextlib.suppress(OSError):
            out.rmdir()


def run_probe(args: argparse.Namespace) -> int:
    result = probe_from_args(args)
    print(result.markdown().split("\n", 2)[2].strip())
    print(f"probe results in {args.out}/probe.json, probe.md")
    return 0
