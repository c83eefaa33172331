"""EventVOT (Wang et al., "Event Stream-based Visual Object Tracking: A High-Resolution Benchmark Dataset and A
Novel Baseline", CVPR 2024, arXiv:2309.14611), read in place.

Facts (github.com/Event-AHU/EventVOT_Benchmark: README, ``EventVOT_eval_toolkit``, ``HDETrack`` loaders):
1141 videos from a Prophesee EVK4-HD, 1280 x 720, 19 classes; Training 841 / Testing 282 / validating 18
sequences. A sequence folder ``recording_YYYY-MM-DD_hh-mm-ss/`` holds ``img/`` (event frames ``0000.png``...,
some ``.bmp``), ``groundtruth.txt`` (x,y,w,h, comma-separated), ``absent.txt`` (**1 = present**: the toolkit's
``eval_tracker.m`` evaluates ``absent_anno = 1 - absent``), and in the "complete version" the raw events
``<seq>.csv`` (integer columns x, y, p, t). The test list is ``sequence_evaluation_config/EventVOT_testing_subset.txt``
(282 names). Attribute flags (14: CM DEF MOC HOC FOC LI OV FM BC NM BOM SIO SV ST) live in
``attributes_anno_event.xlsx``: name in column 1, then one column per attribute, empty = 0 — a CSV export of it
is accepted (:mod:`spiketrack.data.readers.attributes`).

Frame timestamps: the event frames are equal time slices of the recording and no timestamp file is released.
Unless the folder has ``timestamps.txt`` (one integer µs per frame), frame k ends at
``t_start + (k + 1) * (t_end - t_start) // F`` with ``t_start = first event t - 1`` and ``t_end`` = last event t,
so the F windows tile the whole stream and every event belongs to exactly one frame.

Events: ``<seq>.csv`` (an optional header row may name the columns x/y/p/t in any order; without one the
order is x,y,p,t) or, if there is no CSV, ``<seq>.raw``/``<seq>.dat`` via :mod:`spiketrack.data.readers.prophesee`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spiketrack.data.events import EventArray
from spiketrack.data.readers.attributes import EVENTVOT_ATTRIBUTES
from spiketrack.data.readers.common import (
    AbsentConvention,
    list_images,
    load_annotations,
    read_numeric_table,
    time_ordered,
)
from spiketrack.data.sequence import MemorySequence
from spiketrack.errors import DataFormatError

WIDTH, HEIGHT = 1280, 720  # Prophesee EVK4-HD sensor of EventVOT (README: "high-resolution (1280 x 720)")
ABSENT_CONVENTION = AbsentConvention.ONE_MEANS_PRESENT
ATTRIBUTE_CODES = EVENTVOT_ATTRIBUTES
_COLUMN_NAMES = {"x": "x", "y": "y", "p": "p", "t": "t", "pol": "p", "polarity": "p", "ts": "t", "timestamp": "t",
                 "time": "t", "on": "p"}


def is_sequence_dir(folder: Path) -> bool:
    """A folder that looks like an EventVOT sequence (ground truth, events or event frames)."""
    if (folder / "groundtruth.txt").is_file() or (folder / "img").is_dir():
        return True
    return any((folder / f"{folder.name}{suffix}").is_file() for suffix in (".csv", ".raw", ".dat"))


def _find_events(folder: Path) -> Path | None:
    for suffix in (".csv", ".raw", ".dat"):
        path = folder / f"{folder.name}{suffix}"
        if path.is_file():
            return path
    found = sorted(folder.glob("*.csv"))
    return found[0] if len(found) == 1 else None


def read_event_csv(path: Path, seq: str) -> EventArray:
    """EventVOT's event CSV -> events in file order (columns x,y,p,t unless a header row says otherwise)."""
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8-sig", "replace").strip()
    if not first:
        raise DataFormatError(path, "rows", f"sequence {seq}: the event file holds no events")
    sep = "," if "," in first else None
    fields = [f.strip().lower() for f in (first.split(",") if sep else first.split())]
    header = bool(fields) and not all(f.lstrip("-").isdigit() for f in fields)
    order = ["x", "y", "p", "t"]
    if header:
        mapped = [_COLUMN_NAMES.get(f) for f in fields]
        if sorted(m for m in mapped if m) != ["p", "t", "x", "y"] or len(fields) != 4:
            raise DataFormatError(path, "header", f"sequence {seq}: expected columns x, y, p, t; got {first!r}")
        order = mapped
    try:
        table = np.loadtxt(path, delimiter=sep, dtype=np.int64, skiprows=1 if header else 0, ndmin=2,
                           encoding="utf-8-sig")
    except ValueError as exc:
        raise DataFormatError(path, "rows", f"sequence {seq}: {exc}") from None
    if table.shape[0] == 0:
        raise DataFormatError(path, "rows", f"sequence {seq}: the event file holds no events")
    if table.shape[1] != 4:
        raise DataFormatError(path, "columns", f"sequence {seq}: expected 4 columns (x,y,p,t), got {table.shape[1]}")
    cols = {name: table[:, i] for i, name in enumerate(order)}
    p = cols["p"]
    if np.any((p != 0) & (p != 1) & (p != -1)):
        raise DataFormatError(path, "p", f"sequence {seq}: polarity column holds values other than 0/1/-1 "
                                         "(is the column order x,y,p,t?)")
    if np.any(cols["x"] < 0) or np.any(cols["y"] < 0):
        raise DataFormatError(path, "x,y", f"sequence {seq}: negative pixel coordinates")
    return EventArray.from_arrays(cols["t"], cols["x"], cols["y"], p)


def equal_slice_times(events: EventArray, n_frames: int) -> np.ndarray:
    """End time of each of ``n_frames`` equal slices of the event stream (int64 µs, strictly increasing)."""
    start = int(events.t[0]) - 1
    end = int(events.t[-1])
    k = np.arange(1, n_frames + 1, dtype=np.int64)
    return start + (k * (end - start)) // n_frames


class EventVOTSequence(MemorySequence):
    """One EventVOT sequence in memory (events only: EventVOT has no intensity frames)."""

    def __init__(self, folder: Path, events: EventArray, frame_times: np.ndarray, boxes: np.ndarray,
                 absent: np.ndarray, width: int, height: int, attributes: list[str], events_path: Path,
                 times_from_file: bool) -> None:
        super().__init__(folder.name, width, height, events, frame_times, boxes, absent,
                         attributes=attributes, source=f"eventvot:{folder}")
        self.folder = folder
        self.events_path = events_path
        self.times_from_file = times_from_file


def open_eventvot_sequence(
    folder: str | Path,
    *,
    absent_means: AbsentConvention | str | None = None,
    attributes: list[str] | None = None,
    sort_events: bool = False,
    notes: list[str] | None = None,
) -> EventVOTSequence:
    """Read one EventVOT sequence folder in place.

    Events whose timestamps decrease are refused unless ``sort_events`` (then sorted, with a line in ``notes``;
    :func:`spiketrack.data.readers.common.time_ordered`)."""
    folder = Path(folder)
    seq = folder.name
    if not folder.is_dir():
        raise DataFormatError(folder, None, f"sequence {seq}: folder not found")
    gt = folder / "groundtruth.txt"
    absent_file = folder / "absent.txt"
    if not absent_file.is_file():
        raise DataFormatError(absent_file, "file", f"sequence {seq}: visibility file not found")
    convention = AbsentConvention(absent_means) if absent_means is not None else ABSENT_CONVENTION
    ann = load_annotations(seq, gt, absent_file, convention)
    n = len(ann.boxes)
    img = folder / "img"
    if img.is_dir():
        frames = list_images(img)
        if len(frames) != n:
            raise DataFormatError(gt, "rows", f"sequence {seq}: {n} boxes but {len(frames)} frames in img/")
    events_path = _find_events(folder)
    if events_path is None:
        raise DataFormatError(folder, "events", f"sequence {seq}: no raw events ({seq}.csv, {seq}.raw or {seq}.dat); "
                                                "the 'Event Image version' of EventVOT has none — use the complete version")
    width, height = WIDTH, HEIGHT
    if events_path.suffix.lower() == ".csv":
        events = read_event_csv(events_path, seq)
    else:
        from spiketrack.data.readers.prophesee import read_prophesee

        events, w, h = read_prophesee(events_path)
        width, height = w or WIDTH, h or HEIGHT
        if len(events) == 0:
            raise DataFormatError(events_path, "events", f"sequence {seq}: the event file holds no events")
    events = time_ordered(events, events_path, seq, sort_events, notes)
    if int(events.x.max()) >= width or int(events.y.max()) >= height:
        raise DataFormatError(events_path, "x,y", f"sequence {seq}: events outside the {width}x{height} sensor")
    times_file = folder / "timestamps.txt"
    if times_file.is_file():
        table = read_numeric_table(times_file, seq, columns=1)[:, 0]
        if len(table) != n:
            raise DataFormatError(times_file, "rows", f"sequence {seq}: {len(table)} timestamps but {n} boxes")
        frame_times = table.astype(np.int64)
        if np.any(np.diff(frame_times) <= 0):
            raise DataFormatError(times_file, "rows", f"sequence {seq}: timestamps must increase strictly")
    else:
        if int(events.t[-1]) - int(events.t[0]) + 1 < n:
            raise DataFormatError(events_path, "t", f"sequence {seq}: the events span fewer microseconds than {n} frames")
        frame_times = equal_slice_times(events, n)
    return EventVOTSequence(folder, events, frame_times, ann.boxes, ann.absent, width, height,
                            list(attributes or []), events_path, times_file.is_file())
