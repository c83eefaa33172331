"""``spiketrack track``: the tracking command with ``--energy`` counting every model call by :class:`EnergyMeter`.

Arguments and run are :mod:`spiketrack.tracking.command`'s. Tracking knows energy only through the meter
protocol (DESIGN §1), so the command that attaches the energy meter is wired here, on the energy side.
"""

from __future__ import annotations

import argparse

from spiketrack.energy.meter import EnergyMeter
from spiketrack.tracking import command
from spiketrack.tracking.command import add_arguments_track
from spiketrack.tracking.runner import RunSummary


def track_from_args(args: argparse.Namespace, progress: bool | None = None) -> RunSummary:
    """What ``spiketrack track ARGS`` tracks (without its printing and summary file); see ``tracking.command``."""
    return command.track_from_args(args, EnergyMeter.from_config, progress)


def run_track(args: argparse.Namespace) -> int:
    """``spiketrack track``: track a dataset split, with per-sequence energy files under ``--energy``."""
    return command.run_track(args, EnergyMeter.from_config)


__all__ = ["add_arguments_track", "run_track", "track_from_args"]
