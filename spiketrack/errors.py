"""The package's exceptions: one base class and a few kinds whose messages name the file, field or key."""

from __future__ import annotations

from pathlib import Path


class SpiketrackError(Exception):
    """Base class of every error spiketrack raises on purpose; the CLI prints it without a traceback."""


class DataFormatError(SpiketrackError):
    """A data file (sequence, result, ground truth, ...) breaks its format.

    The message names the file, the field (dataset, column, line) and what was expected.
    """

    def __init__(self, path: str | Path | None, field: str | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.problem = problem
        where = self.path or "<memory>"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {problem}")


class ConfigError(SpiketrackError):
    """A configuration key, value or file is wrong; the message names the key or path."""


class CheckpointError(SpiketrackError):
    """A checkpoint is missing, unreadable or does not fit the model; the message names the file."""
