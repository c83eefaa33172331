"""Compute threads that do not fight their own loader workers (or another process) for the cores.

PyTorch starts one OpenMP thread per core and its threads spin while they wait for each other. A training process
that also runs DataLoader workers then has more busy threads than cores, and when another process takes one core,
every parallel region waits for a descheduled thread: on a 2-core machine a quickstart training step went from
about 0.7 s to 8-16 s that way. So a process gives torch
``usable cores - loader workers`` threads (at least one), where the usable cores are those the process may run on
(``os.sched_getaffinity``, e.g. under ``taskset`` or a container's CPU set). An explicit ``OMP_NUM_THREADS`` wins.
"""

from __future__ import annotations

import os

import torch


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def compute_threads(loader_workers: int = 0) -> int:
    """Torch threads for a process with ``loader_workers`` DataLoader workers: ``OMP_NUM_THREADS`` when set, else
    the usable cores minus the workers, at least 1."""
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return max(1, usable_cores() - max(0, int(loader_workers)))


def configure_threads(loader_workers: int = 0) -> int:
    """Set torch's intra-op threads to :func:`compute_threads` (returns the number)."""
    n = compute_threads(loader_workers)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


__all__ = ["compute_threads", "configure_threads", "usable_cores"]
