"""EventArray: one stream of polarity events as four parallel numpy arrays (dtypes of docs/architecture.md,
"Sequence files")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_DTYPE = np.int64  # microseconds
XY_DTYPE = np.uint16
P_DTYPE = np.uint8  # 1 = ON, 0 = OFF


@dataclass(frozen=True)
class EventArray:
    """Events sorted by time: ``t`` int64 µs, ``x``/``y`` uint16 (row 0 = top), ``p`` uint8 (1 = ON)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.t)
        if not (len(self.x) == len(self.y) == len(self.p) == n):
            raise ValueError(
                f"EventArray fields differ in length: t={n}, x={len(self.x)}, y={len(self.y)}, p={len(self.p)}"
            )

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, index: slice | np.ndarray) -> EventArray:
        return EventArray(self.t[index], self.x[index], self.y[index], self.p[index])

    @staticmethod
    def from_arrays(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> EventArray:
        """Cast to the canonical dtypes (polarity: anything > 0 is ON)."""
        p = np.asarray(p)
        p = (p > 0).astype(P_DTYPE) if p.dtype != P_DTYPE else p
        return EventArray(
            np.asarray(t, dtype=T_DTYPE), np.asarray(x, dtype=XY_DTYPE), np.asarray(y, dtype=XY_DTYPE), p
        )

    @staticmethod
    def empty() -> EventArray:
        return EventArray(
            np.zeros(0, T_DTYPE), np.zeros(0, XY_DTYPE), np.zeros(0, XY_DTYPE), np.zeros(0, P_DTYPE)
        )

    @staticmethod
    def concatenate(parts: list[EventArray]) -> EventArray:
        """Join streams in the given order (callers keep time order)."""
        if not parts:
            return EventArray.empty()
        return EventArray(
            np.concatenate([e.t for e in parts]),
            np.concatenate([e.x for e in parts]),
            np.concatenate([e.y for e in parts]),
            np.concatenate([e.p for e in parts]),
        )

    def sorted_by_time(self) -> EventArray:
        """A stable time sort (simulators and merged streams need it)."""
        order = np.argsort(self.t, kind="stable")
        return self[order]

    def between(self, t0: int, t1: int) -> EventArray:
        """Events with ``t0 < t <= t1`` by binary search (the stream must be time-sorted)."""
        i0 = int(np.searchsorted(self.t, t0, side="right"))
        i1 = int(np.searchsorted(self.t, t1, side="right"))
        return self[i0:i1]
