"""Per-stage wall-clock accounting (data loading, representation, model, post-processing).

The runner reports where time goes so the slowest stage is known. On CUDA the device is synchronised at
stage boundaries, otherwise asynchronous kernels would be billed to whichever stage waits for them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

STAGES = ("data", "representation", "model", "postprocess")


class StageTimer:
    """Accumulates seconds per named stage; ``stage(name)`` is a context manager."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.seconds: dict[str, float] = {s: 0.0 for s in STAGES}
        self._sync = device is not None and torch.device(device).type == "cuda"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._sync:
                torch.cuda.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return sum(self.seconds.values())

    def merge(self, other: dict[str, float]) -> None:
        """Add another timer's seconds (e.g. from a worker process)."""
        for k, v in other.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + float(v)


__all__ = ["STAGES", "StageTimer"]
