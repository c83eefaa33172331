"""Atomic output files: write a temporary file beside the target, then rename it over the target.

``os.replace`` is atomic on POSIX, so a reader (or a resumed run) sees either the old file or the whole new
one, never a half-written file under the final name. The temporary file (``.<name>.tmp-<pid>``) is removed
when the write fails (disk full, no permission, interrupted); one left by a killed process (``kill -9``) is
removed by :func:`clean_stale_temps` when the next run starts in that folder (only files of processes that
no longer run). Binary writers with their own format (checkpoints, sequence files) use the same temporary
names and :func:`atomic_path`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP_NAME = re.compile(r"^\..+\.tmp-(\d+)$")


def temp_path(path: str | Path) -> Path:
    """The temporary name of ``path`` for this process: ``.<name>.tmp-<pid>`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed over ``path``, on any failure removed.

    An OS error that names no file, or the temporary one (a write that fails on a full disk), is raised again
    naming ``path``, so the one-line message says which file could not be written.

    For writers that want a file name (``matplotlib.savefig``, ``h5py.File``, ``torch.save``).
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and (exc.filename is None or Path(exc.filename) == tmp):
            # a failed write names no file (or the temporary one): the error names the file being written
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from None
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary name with the process id, then rename); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def clean_stale_temps(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Remove temporary files (``.<name>.tmp-<pid>``) of processes that no longer run; returns what was removed.

    Called when a run starts in ``folder`` (track results, training run folders, checkpoints, reports), so
    that a run killed while writing leaves nothing behind for long. Files of live processes are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*"):
        m = _TMP_NAME.match(p.name)
        if m and p.is_file() and not _pid_alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "clean_stale_temps", "temp_path"]
