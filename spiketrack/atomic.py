"""Atomic text files: write a temporary file beside the target, then rename it over the target.

``os.replace`` is atomic on POSIX, so a reader (or a resumed run) sees either the old file or the whole new
one, never a half-written file under the final name. Binary writers with their own format (checkpoints,
sequence files) keep their own variants, which also flush to disk.
"""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary name with the process id, then rename); returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


__all__ = ["atomic_write_text"]
