"""Adaptive search region (HDETrack V2): enlarge the search crop for one frame after repeated jumps.

After each prediction the IoU with the previous prediction is compared with ``tau``: below it the
counter goes up by one, otherwise down by one (never below 0). When the counter reaches ``m`` the next
frame is searched with the search factor times ``theta`` and the counter restarts at 0.
Defaults tau 0.5, m 7, theta 1.5 follow HDETrack V2 (Wang et al., "Event Stream-based Visual Object
Tracking: HDETrack V2 and A High-Definition Benchmark", 2025).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AdaptiveSearchRegion:
    """Counter state of the adaptive search region; ``enabled=False`` always returns scale 1."""

    tau: float = 0.5
    m: int = 7
    theta: float = 1.5
    enabled: bool = True
    count: int = field(default=0, init=False)
    _pending: bool = field(default=False, init=False)

    def reset(self) -> None:
        self.count = 0
        self._pending = False

    def update(self, iou: float) -> None:
        """Record the IoU between the newest prediction and the one before it."""
        if not self.enabled:
            return
        self.count = self.count + 1 if iou < self.tau else max(self.count - 1, 0)
        if self.count >= self.m:
            self._pending = True
            self.count = 0

    @property
    def scale(self) -> float:
        """Search-factor multiplier for the coming frame: ``theta`` after a trigger until consumed, else 1."""
        return self.theta if self._pending else 1.0

    def consume(self) -> None:
        """The enlarged search was used on a frame: back to the normal factor."""
        self._pending = False


__all__ = ["AdaptiveSearchRegion"]
