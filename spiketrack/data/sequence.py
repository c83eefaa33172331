"""The Sequence interface: what every reader provides (native files and public datasets read in place).

Frame k's events are those with ``frame_times[k-1] < t <= frame_times[k]``; frame 0 uses a window of the
same length as frame 1's before ``frame_times[0]`` (docs/architecture.md, "Sequence files").
"""

from __future__ import annotations

import abc

import numpy as np

from spiketrack.data import visibility
from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError


class Sequence(abc.ABC):
    """One annotated event sequence.

    Subclasses set ``name``, ``width``, ``height``, ``source``, ``attributes``, ``frame_times`` (int64 [F] µs),
    ``boxes`` (float32 [F, 4] x, y, w, h) and ``absent`` (uint8 [F], 1 = not visible) and implement
    :meth:`events_between`; :meth:`rgb` is implemented where intensity frames exist.

    Multi-object scenes also set ``object_boxes`` (float32 [K, F, 4]) and ``object_absent`` (uint8 [K, F]): every
    annotated object, the primary target at index 0; None where only the target is annotated. Where the source knows
    it (the synthetic benchmark), ``visible`` (float32 [F]) and ``object_visible`` ([K, F]) give the visible share of
    the target's / each object's area. ``scene`` names the recording (default: the sequence's own name); sequences
    of one scene share it.
    """

    name: str
    width: int
    height: int
    source: str
    attributes: list[str]
    frame_times: np.ndarray
    boxes: np.ndarray
    absent: np.ndarray
    object_boxes: np.ndarray | None = None
    object_absent: np.ndarray | None = None
    visible: np.ndarray | None = None
    object_visible: np.ndarray | None = None
    _scene: str | None = None

    @property
    def scene(self) -> str:
        """The scene (recording) the sequence belongs to; its own name unless the source says otherwise."""
        return self._scene or self.name

    @scene.setter
    def scene(self, value: str | None) -> None:
        self._scene = value

    @property
    def num_objects(self) -> int:
        """Annotated objects (1 when only the primary target is)."""
        return 1 if self.object_boxes is None else int(len(self.object_boxes))

    def object_track(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [F, 4] and absent flags [F] of object ``i`` (0 = the primary target)."""
        if i == 0 and self.object_boxes is None:
            return self.boxes, self.absent
        if self.object_boxes is None or not 0 <= i < len(self.object_boxes):
            raise IndexError(f"{self.name}: object {i} out of range [0, {self.num_objects})")
        return self.object_boxes[i], self.object_absent[i]

    def object_visibility(self, i: int) -> np.ndarray | None:
        """Visible share [F] of object ``i``'s area (0 = the primary target); None where the source does not know it."""
        if self.object_visible is not None:
            return self.object_visible[i]
        return self.visible if i == 0 else None

    def clean_frames(self, i: int, min_visible: float, max_overlap: float) -> np.ndarray:
        """bool [F]: frames where object ``i`` is clean (:func:`spiketrack.data.visibility.clean_frames`)."""
        boxes, absent = self.object_track(i)
        others = [self.object_track(j)[0] for j in range(self.num_objects) if j != i]
        stacked = np.stack(others) if others else np.zeros((0, len(boxes), 4), np.float32)
        return visibility.clean_frames(boxes, absent, self.object_visibility(i), stacked, min_visible, max_overlap)

    @property
    def num_frames(self) -> int:
        return int(len(self.frame_times))

    @property
    def has_rgb(self) -> bool:
        return False

    def frame_window(self, k: int) -> tuple[int, int]:
        """``(t0, t1)`` such that frame k's events have ``t0 < t <= t1``."""
        if not 0 <= k < self.num_frames:
            raise IndexError(f"{self.name}: frame {k} out of range [0, {self.num_frames})")
        ft = self.frame_times
        if k > 0:
            return int(ft[k - 1]), int(ft[k])
        length = int(ft[1] - ft[0]) if len(ft) > 1 else 0
        return int(ft[0]) - length, int(ft[0])

    @abc.abstractmethod
    def events_between(self, t0: int, t1: int) -> EventArray:
        """Events with ``t0 < t <= t1``."""

    def frame_events(self, k: int) -> EventArray:
        """The events of frame k's window."""
        return self.events_between(*self.frame_window(k))

    def rgb(self, k: int) -> np.ndarray:
        """Intensity frame k as uint8 [H, W, 3]."""
        raise DataFormatError(self.source or self.name, "frames/rgb", "this sequence has no intensity frames")

    def close(self) -> None:
        """Release open files (no-op for in-memory sequences)."""

    def __enter__(self) -> Sequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, {self.width}x{self.height}, "
            f"frames={self.num_frames}, attributes={self.attributes})"
        )


class MemorySequence(Sequence):
    """A sequence held in memory (simulator output, tests, readers that load everything)."""

    def __init__(
        self,
        name: str,
        width: int,
        height: int,
        events: EventArray,
        frame_times: np.ndarray,
        boxes: np.ndarray,
        absent: np.ndarray,
        rgb: np.ndarray | None = None,
        attributes: list[str] | None = None,
        source: str = "",
        object_boxes: np.ndarray | None = None,
        object_absent: np.ndarray | None = None,
        visible: np.ndarray | None = None,
        object_visible: np.ndarray | None = None,
        scene: str | None = None,
    ) -> None:
        self.name, self.width, self.height, self.source = name, int(width), int(height), source
        self.scene = scene
        self.visible = None if visible is None else np.asarray(visible, dtype=np.float32)
        self.object_visible = None if object_visible is None else np.asarray(object_visible, dtype=np.float32)
        self.events = events
        self.frame_times = np.asarray(frame_times, dtype=np.int64)
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.absent = np.asarray(absent, dtype=np.uint8)
        self._rgb = rgb
        self.attributes = list(attributes or [])
        if (object_boxes is None) != (object_absent is None):
            raise DataFormatError(source or name, "objects", "give both object_boxes and object_absent, or neither")
        if object_boxes is not None:
            self.object_boxes = np.asarray(object_boxes, dtype=np.float32)
            self.object_absent = np.asarray(object_absent, dtype=np.uint8)

    @property
    def has_rgb(self) -> bool:
        return self._rgb is not None

    def events_between(self, t0: int, t1: int) -> EventArray:
        return self.events.between(t0, t1)

    def rgb(self, k: int) -> np.ndarray:
        if self._rgb is None:
            return super().rgb(k)
        return self._rgb[k]
