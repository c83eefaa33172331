"""Sequences recorded with a DAVIS346 and stored as AEDAT 4 (FE108, VisEvent, COESOT, FELT), read in place.

A :class:`DavisLayout` says where each dataset keeps the recording, the boxes and the visibility flags;
:func:`open_davis_sequence` turns one sequence folder into a :class:`DavisSequence`.

Alignment of boxes and frames: row k of the ground truth belongs to the k-th APS frame of the recording
(the datasets' frame folders ``img/``, ``<seq>_aps/``, ``vis_imgs/`` were extracted from those frames in
order, ``frame0000`` first — VisEvent ``scripts/read_aedat4.py``), so frame k's timestamp is that APS
frame's exposure centre. When the recording holds more APS frames than boxes, a ``start_end_index.txt``
(COESOT) selects the annotated run: two integers, first and last APS frame index (inclusive; an exclusive end
is accepted when that is what makes the count match). Otherwise the counts must agree, else a
:class:`DataFormatError` names the file.

The recording decoder is pluggable (``decoder=``) so tests and other containers can supply the same
:class:`~spiketrack.data.readers.aedat4.Aedat4Recording` without an AEDAT 4 file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiketrack.data.readers.aedat4 import Aedat4Recording, gray_to_rgb, read_aedat4
from spiketrack.data.readers.common import AbsentConvention, load_annotations, read_numeric_table, time_ordered
from spiketrack.data.sequence import MemorySequence
from spiketrack.errors import DataFormatError

Decoder = Callable[[Path], Aedat4Recording]


@dataclass(frozen=True)
class DavisLayout:
    """Where one DAVIS dataset keeps things inside a sequence folder (``{seq}`` = folder name)."""

    name: str
    events: tuple[str, ...]  # candidate recording names, first existing wins; '*.aedat4' = the only one
    groundtruth: tuple[str, ...]
    absent: tuple[tuple[str, AbsentConvention], ...]  # candidate visibility files with their meaning
    frame_dirs: tuple[str, ...]  # folders that mark a sequence folder (not read: frames come from the file)
    attribute_codes: tuple[str, ...] | None = None

    def find_events(self, folder: Path) -> Path | None:
        seq = folder.name
        for pattern in self.events:
            if pattern == "*.aedat4":
                found = sorted(folder.glob("*.aedat4"))
                if len(found) == 1:
                    return found[0]
                continue
            path = folder / pattern.format(seq=seq)
            if path.is_file():
                return path
        beside = folder.parent / f"{seq}.aedat4"  # DV export scripts leave <seq>.aedat4 next to the folder
        return beside if beside.is_file() else None

    def find_groundtruth(self, folder: Path) -> Path | None:
        for pattern in self.groundtruth:
            path = folder / pattern.format(seq=folder.name)
            if path.is_file():
                return path
        return None

    def find_absent(self, folder: Path) -> tuple[Path, AbsentConvention] | None:
        for pattern, convention in self.absent:
            path = folder / pattern.format(seq=folder.name)
            if path.is_file():
                return path, convention
        return None

    def is_sequence_dir(self, folder: Path) -> bool:
        """A folder holding any file or folder this layout puts in a sequence folder."""
        if self.find_groundtruth(folder) is not None:
            return True
        named = [p.format(seq=folder.name) for p in self.events if "*" not in p]
        if any((folder / n).is_file() for n in named):
            return True
        return any((folder / d.format(seq=folder.name)).is_dir() for d in self.frame_dirs)


class DavisSequence(MemorySequence):
    """One DAVIS sequence in memory: all events, APS frames as intensity frames, boxes, absent flags."""

    def __init__(self, folder: Path, layout: DavisLayout, recording: Aedat4Recording, frame_index: np.ndarray,
                 boxes: np.ndarray, absent: np.ndarray, attributes: list[str]) -> None:
        super().__init__(
            name=folder.name,
            width=recording.width,
            height=recording.height,
            events=recording.events,
            frame_times=recording.frame_times[frame_index],
            boxes=boxes,
            absent=absent,
            rgb=None,
            attributes=attributes,
            source=f"{layout.name}:{folder}",
        )
        self.folder = folder
        self.layout = layout
        self.recording_path = recording.path
        self._frames = recording.frames[frame_index]

    @property
    def has_rgb(self) -> bool:
        return len(self._frames) == self.num_frames

    def rgb(self, k: int) -> np.ndarray:
        """APS frame k as uint8 [H, W, 3] (gray repeated over the channels)."""
        if not self.has_rgb:
            return super().rgb(k)
        return gray_to_rgb(self._frames[k : k + 1])[0]

    def rgb_array(self) -> np.ndarray | None:
        """All intensity frames, uint8 [F, H, W, 3] (for conversion), or None."""
        return gray_to_rgb(self._frames) if self.has_rgb else None


def _annotated_frames(folder: Path, seq: str, n_frames: int, n_boxes: int, recording_path: Path) -> np.ndarray:
    """Indices of the APS frames the ground-truth rows belong to."""
    if n_frames == n_boxes:
        return np.arange(n_boxes)
    index_file = folder / "start_end_index.txt"
    if index_file.is_file():
        values = read_numeric_table(index_file, seq).ravel()
        if len(values) != 2 or np.any(values != np.round(values)) or values[0] < 0:
            raise DataFormatError(index_file, "values", f"sequence {seq}: expected two frame indices, got {values.tolist()}")
        start, end = int(values[0]), int(values[1])
        for stop in (end + 1, end):  # inclusive end first, then exclusive
            if stop - start == n_boxes and stop <= n_frames:
                return np.arange(start, stop)
        raise DataFormatError(
            index_file, "values",
            f"sequence {seq}: frames {start}..{end} do not match {n_boxes} boxes "
            f"({recording_path.name} holds {n_frames} APS frames)",
        )
    raise DataFormatError(
        recording_path, "frames",
        f"sequence {seq}: {n_frames} APS frames but {n_boxes} boxes in the ground truth "
        "(and no start_end_index.txt saying which frames are annotated)",
    )


def open_davis_sequence(
    folder: str | Path,
    layout: DavisLayout,
    *,
    decoder: Decoder = read_aedat4,
    absent_means: AbsentConvention | str | None = None,
    attributes: list[str] | None = None,
    sort_events: bool = False,
    notes: list[str] | None = None,
) -> DavisSequence:
    """Read one sequence folder of a DAVIS dataset in place.

    ``absent_means`` overrides the layout's meaning of the visibility file ('absent' or 'present'). Events whose
    timestamps decrease are refused unless ``sort_events`` (then sorted, with a line in ``notes``;
    :func:`spiketrack.data.readers.common.time_ordered`).
    """
    folder = Path(folder)
    seq = folder.name
    if not folder.is_dir():
        raise DataFormatError(folder, None, f"sequence {seq}: folder not found")
    gt = layout.find_groundtruth(folder)
    if gt is None:
        raise DataFormatError(folder / layout.groundtruth[0].format(seq=seq), "file", f"sequence {seq}: ground truth not found")
    events_path = layout.find_events(folder)
    if events_path is None:
        names = ", ".join(p.format(seq=seq) for p in layout.events)
        raise DataFormatError(folder, "events", f"sequence {seq}: no event recording ({names})")
    found = layout.find_absent(folder)
    absent_path, convention = (None, None) if found is None else found
    if absent_path is not None and absent_means is not None:
        convention = AbsentConvention(absent_means)
    ann = load_annotations(seq, gt, absent_path, convention)
    recording = decoder(events_path)
    if len(recording.events) == 0:
        raise DataFormatError(events_path, "events", f"sequence {seq}: the recording holds no events")
    ordered = time_ordered(recording.events, events_path, seq, sort_events, notes)
    if ordered is not recording.events:
        recording = dataclasses.replace(recording, events=ordered)
    index = _annotated_frames(folder, seq, recording.num_frames, len(ann.boxes), events_path)
    return DavisSequence(folder, layout, recording, index, ann.boxes, ann.absent, list(attributes or []))
