"""``spiketrack track``: track every sequence of a dataset split and write result files.

``--energy`` attaches the meter factory the caller hands in (tracking knows energy only through the meter
protocol of :mod:`spiketrack.tracking.meter`); the CLI (:mod:`spiketrack.cli`, above every layer) hands in the
energy meter's.

The tracker is ``--tracker model`` with ``--checkpoint`` (the checkpoint's own config rebuilds the model; ``--config``
is optional and must describe the same model) or a non-learned tracker (:data:`spiketrack.tracking.trackers.
NON_LEARNED`: ``event-density``, ``ncc``), configured by ``--config``/``--set`` or the defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spiketrack.atomic import atomic_write_text
from spiketrack.config import ExperimentConfig, load_config
from spiketrack.errors import ConfigError
from spiketrack.models.checkpoint import config_of_checkpoint
from spiketrack.outputs import check_output_dir_possible
from spiketrack.tracking.meter import MeterFactory
from spiketrack.tracking.runner import RunSummary, TrackerLike, track_dataset
from spiketrack.tracking.trackers import NON_LEARNED, non_learned, tracker_choices

TRACKER_HELP = "model (a trained checkpoint) or a non-learned tracker: " + "; ".join(
    f"{t.name}: {t.description}" for t in NON_LEARNED.values()) + " ('baseline' = event-density)"


def command_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config of a tracking command: ``--config`` + ``--set``; without ``--config``, a model's checkpoint config
    (+ ``--set``), or the defaults (+ ``--set``) for a non-learned tracker."""
    if args.tracker == "model" and not args.checkpoint:
        raise ConfigError("--checkpoint is required with --tracker model (or name a non-learned --tracker)")
    if args.config:
        return load_config(args.config, args.set)
    if args.tracker == "model":
        return config_of_checkpoint(args.checkpoint, args.set)
    return load_config(None, args.set)


def command_tracker(args: argparse.Namespace) -> TrackerLike:
    """What ``--tracker`` / ``--checkpoint`` name: the checkpoint path or the non-learned tracker."""
    return args.checkpoint if args.tracker == "model" else non_learned(args.tracker)


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracker``, ``--checkpoint``, ``--config`` and ``--set``, shared by ``track`` and ``probe template``."""
    parser.add_argument("--tracker", choices=tracker_choices(), default="model", help=TRACKER_HELP)
    parser.add_argument("--checkpoint", help="model checkpoint (required with --tracker model)")
    parser.add_argument("--config", help="experiment YAML (model, data sizes, tracking options); optional: a "
                        "checkpoint holds its own config, a non-learned tracker uses the defaults")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")


def add_arguments_track(parser: argparse.ArgumentParser) -> None:
    add_tracker_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset folder of <name>.h5 files and split lists")
    parser.add_argument("--split", default="test", help="split list to track (default: test; 'all' = every file)")
    parser.add_argument("--out", required=True, help="results folder: <sequence>.txt and <sequence>_time.txt")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes on CPU (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--energy", action="store_true", help="also count operations: <sequence>_energy.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def track_from_args(
    args: argparse.Namespace, meter: MeterFactory | None = None, progress: bool | None = None
) -> RunSummary:
    """The :func:`track_dataset` call of ``spiketrack track ARGS``; ``meter`` counts operations with ``--energy``.

    ``progress`` (default: not ``--quiet``) lets a caller that parsed a printed command line choose the bar.
    """
    cfg = command_config(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.energy and meter is None:
        raise ConfigError("--energy: no energy meter was given to count with (run `spiketrack track`)")
    check_output_dir_possible(args.out, "results folder")  # made by track_dataset, which removes it on failure
    return track_dataset(
        cfg,
        command_tracker(args),
        args.dataset,
        split=None if args.split == "all" else args.split,
        out_dir=args.out,
        workers=args.workers,
        device=args.device,
        meter=meter if args.energy else None,
        progress=not args.quiet if progress is None else progress,
    )


def run_track(args: argparse.Namespace, meter: MeterFactory | None = None) -> int:
    """Track, write ``track_summary.json`` and print the run's speed; ``meter`` serves ``--energy``."""
    summary = track_from_args(args, meter)
    out = Path(args.out)
    atomic_write_text(out / "track_summary.json", json.dumps(summary.to_dict(), indent=1))
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in summary.stages.items())
    print(
        f"tracked {len(summary.tracked)} sequences ({len(summary.skipped)} already finished), "
        f"{summary.frames} frames in {summary.seconds:.2f}s: {summary.fps:.1f} frames/s"
    )
    if summary.frames:
        print(f"time per stage: {stages} (slowest: {summary.slowest_stage})")
    print(f"results in {out}")
    return 0
