"""``spiketrack train CONFIG`` and ``spiketrack distill CONFIG --teacher CKPT`` (thin CLI over the library)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from spiketrack.config import load_config

if TYPE_CHECKING:
    from spiketrack.train.trainer import TrainResult


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--out", default=None, help="run folder (default: train.out_dir of the config)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the run folder (exactly where it stopped)")
    parser.add_argument("--resume-changed-config", action="store_true",
                        help="with --resume: accept a config that differs from the run's config.yaml beyond the keys "
                             "that may change on resume (train.epochs, logging, checkpoint cadence)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                        help="stop (with a checkpoint) after this many optimiser steps in total")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments_train(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spiketrack train``."""
    _common(parser)


def add_arguments_distill(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spiketrack distill``."""
    _common(parser)
    parser.add_argument("--teacher", required=True, help="checkpoint of the trained teacher (from `spiketrack train`)")


def _report(result) -> None:  # noqa: ANN001 - TrainResult
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if isinstance(v, float))
    print(f"run folder: {result.run_dir}")
    print(f"epoch {result.epoch}, step {result.step}; last checkpoint: {result.last_checkpoint}")
    if result.best_checkpoint:
        print(f"best checkpoint: {result.best_checkpoint}")
    if metrics:
        print(f"last epoch: {metrics}")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


def train_from_args(args: argparse.Namespace, progress: bool | None = None) -> TrainResult:
    """The :func:`~spiketrack.train.trainer.train` call of ``spiketrack train ARGS`` (progress: not --no-progress)."""
    from spiketrack.train.trainer import train

    cfg = load_config(args.config, args.overrides)
    progress = not args.no_progress if progress is None else progress
    return train(cfg, args.out, resume=args.resume, stop_after=args.stop_after, progress=progress,
                 allow_config_change=args.resume_changed_config)


def distill_from_args(args: argparse.Namespace, progress: bool | None = None) -> TrainResult:
    """The :func:`~spiketrack.train.trainer.distill` call of ``spiketrack distill ARGS``."""
    from spiketrack.train.trainer import distill

    cfg = load_config(args.config, args.overrides)
    progress = not args.no_progress if progress is None else progress
    return distill(cfg, args.teacher, args.out, resume=args.resume, stop_after=args.stop_after, progress=progress,
                   allow_config_change=args.resume_changed_config)


def run_train(args: argparse.Namespace) -> int:
    """Train a teacher or student from scratch (or resume)."""
    _logging()
    _report(train_from_args(args))
    return 0


def run_distill(args: argparse.Namespace) -> int:
    """Distil a student from a frozen teacher checkpoint (or resume)."""
    _logging()
    _report(distill_from_args(args))
    return 0


__all__ = [
    "add_arguments_distill",
    "add_arguments_train",
    "distill_from_args",
    "run_distill",
    "run_train",
    "train_from_args",
]
