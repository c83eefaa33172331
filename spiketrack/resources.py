"""Memory the machine has, and the check that refuses a size before it is allocated.

A size a user gives (a crop side, an input size, a number of timesteps) can ask for more memory than the
machine has; the allocator then fails deep inside a library (or the machine swaps). :func:`check_memory`
compares an estimate with the memory available now and raises a ConfigError that names the option and the
estimate, before anything is allocated.
"""

from __future__ import annotations

import os

from spiketrack.errors import ConfigError


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``, else free physical pages);
    None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps the number >= 1 (B, KiB, MiB, GiB, TiB)."""
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if abs(n) < 1024:
            return f"{n:.3g} {unit}"
    return f"{n / 1024:.3g} TiB"


def check_memory(estimate: float, what: str, available: int | None = None) -> None:
    """ConfigError "<what> needs about N GiB, more than the M GiB available" when ``estimate`` bytes exceed the
    memory available now (``available``: that figure, for tests)."""
    free = available_memory() if available is None else available
    if free is not None and estimate > free:
        raise ConfigError(f"{what} needs about {format_bytes(estimate)}, more than the {format_bytes(free)} "
                          "of memory available; choose a smaller size")


__all__ = ["available_memory", "check_memory", "format_bytes"]
