"""Output locations are checked before any work: a folder that cannot be made or written, or an ``--out``
that names a file where a folder is expected (or a folder where a file is), is an :class:`OutputError`
naming the path, raised in well under a second instead of after minutes of tracking, counting or training."""

from __future__ import annotations

import os
from pathlib import Path

from spiketrack.errors import OutputError, environment_error_message


def _fail(path: Path, exc: OSError, what: str) -> OutputError:
    message = environment_error_message(exc) or f"{exc.filename or path}: {exc.strerror or exc}"
    return OutputError(f"cannot write the {what} {path}: {message}")


def prepare_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Make folder ``path`` (with parents) and check that a file can be written in it; returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; expected the {what} (give a folder path)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(path, exc, what) from None
    probe = path / f".write-probe.tmp-{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise _fail(path, exc, what) from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Check that file ``path`` can be written (its folder is made); a folder at ``path`` is an error."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected the {what} (give a file path)")
    prepare_output_dir(path.parent if str(path.parent) else Path("."), what=f"folder of the {what}")
    return path


def check_output_dir_possible(path: str | Path, what: str = "output folder") -> Path:
    """Check, without creating anything, that folder ``path`` could be made and written: it is not a file and
    its nearest existing ancestor is a writable folder (for outputs written only at the end of a long run)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; expected the {what} (give a folder path)")
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot make the {what} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot make the {what} {path}: {probe} is not writable (permission denied or read-only)")
    return path


def check_output_file_possible(path: str | Path, what: str = "output file") -> Path:
    """Check, without creating anything, that file ``path`` could be written (a folder at ``path`` is an error);
    for outputs written at the end of a run, whose writer makes the folder (so a refused run leaves none)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected the {what} (give a file path)")
    check_output_dir_possible(path.parent if str(path.parent) else Path("."), what=f"folder of the {what}")
    return path


__all__ = ["check_output_dir_possible", "check_output_file", "check_output_file_possible", "prepare_output_dir"]
