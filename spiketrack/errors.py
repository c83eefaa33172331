"""The package's exceptions: one base class and a few kinds whose messages name the file, field or key."""

from __future__ import annotations

import os
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

    def __reduce__(self) -> tuple:
        # picklable with its three arguments: raised in a worker process (``track --workers``), it reaches the
        # parent as itself, not as a broken process pool
        return type(self), (self.path, self.field, self.problem)


class ConfigError(SpiketrackError):
    """A configuration key, value or file is wrong; the message names the key or path."""


class CheckpointError(SpiketrackError):
    """A checkpoint is missing, unreadable or does not fit the model; the message names the file."""


class OutputError(SpiketrackError):
    """An output file or folder cannot be written (read-only, not a folder, disk full); names the path."""


# errno values that are the user's environment, not a bug: the CLI reports them in one line (exit code 2)
_ENV_ERRNOS = {
    "ENOSPC": "no space left on the device",
    "EDQUOT": "disk quota exceeded",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EROFS": "read-only file system",
    "ENOTDIR": "a path component is not a folder",
    "EISDIR": "is a folder, expected a file",
    "EEXIST": "exists and is not a folder",
    "ENOENT": "no such file or folder",
    "ENAMETOOLONG": "file name too long",
}


def environment_error_message(exc: OSError) -> str | None:
    """One line naming the file and the problem when ``exc`` is the user's environment (disk full, no
    permission, read-only, not a folder, ...); None for other OS errors (those are bugs and keep a traceback)."""
    import errno as _errno

    names = {getattr(_errno, name, None): text for name, text in _ENV_ERRNOS.items()}
    names.pop(None, None)
    if exc.errno not in names:
        return None
    where = exc.filename if exc.filename is not None else "<unknown file>"
    second = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    return f"{where}{second}: {names[exc.errno]} ({exc.strerror or exc})"


def output_error(exc: OSError, path: str | Path, what: str) -> OutputError | None:
    """``OutputError`` "cannot write <what>: <path>: <problem>" when ``exc`` is the user's environment (disk full,
    no permission, ...), naming ``path`` whatever file the OS error named (often a temporary file, or none);
    None for other OS errors (bugs, which keep their traceback)."""
    if exc.errno is None:
        return None
    reason = environment_error_message(OSError(exc.errno, os.strerror(exc.errno), str(path)))
    return None if reason is None else OutputError(f"cannot write {what}: {reason}")
