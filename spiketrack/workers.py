"""Worker processes die with their parent.

A pool worker whose parent is killed (``kill -9``, SIGTERM, OOM killer) would otherwise run on as an orphan,
holding CPUs, memory and open files. :func:`bound_initializer` is given to a pool as its ``initializer``:

- on Linux the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
- everywhere a daemon thread checks every second whether the parent changed (``os.getppid()``) and exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 1.0


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent(parent: int | None = None) -> None:
    """Make the calling (worker) process end when ``parent`` (default: its current parent) ends."""
    parent = os.getppid() if parent is None else parent
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def bound_initializer(parent: int, init: Callable[..., Any] | None = None, *args: Any) -> None:
    """Pool ``initializer``: :func:`die_with_parent`, then the pool's own ``init(*args)``.

    Use as ``initializer=bound_initializer, initargs=(os.getpid(), init, *args)``.
    """
    die_with_parent(parent)
    if init is not None:
        init(*args)


__all__ = ["bound_initializer", "die_with_parent"]
