"""Shared parsing for the public-dataset readers: ground-truth tables, absent flags, split lists.

Every public layout stores one box per annotated frame in a text file whose separator varies
(commas in EventVOT/COESOT/VisEvent/FELT, sometimes spaces or tabs in copies re-saved by other tools),
and a per-frame 0/1 visibility file whose meaning differs between datasets (see
:class:`AbsentConvention`). Errors name the sequence, the file and the line.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError

_SEPARATORS = re.compile(r"[,\s;]+")
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")


class AbsentConvention(str, enum.Enum):
    """What a ``1`` in a dataset's visibility file means.

    EventVOT and COESOT ``absent.txt``: 1 = target present (their toolkits evaluate ``1 - absent``).
    VisEvent toolkit ``annos/absent/<seq>.txt``: 1 = target absent. VisEvent per-sequence
    ``absent_label.txt``: 1 = present (the authors' annotation script writes 1 when a box exists).
    """

    ONE_MEANS_ABSENT = "absent"
    ONE_MEANS_PRESENT = "present"


def _error(seq: str, path: Path, field: str, problem: str) -> DataFormatError:
    return DataFormatError(path, field, f"sequence {seq}: {problem}")


def read_numeric_table(path: Path, seq: str, columns: int | None = None) -> np.ndarray:
    """Rows of numbers separated by commas, spaces, tabs or semicolons -> float64 [N, C].

    Blank lines are skipped; ragged rows, non-numeric values and a wrong column count raise
    :class:`DataFormatError` naming the sequence, file and line.
    """
    if not path.is_file():
        raise _error(seq, path, "file", "file not found")
    rows: list[list[float]] = []
    width = columns
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(seq, path, "file", f"not a text file ({exc})") from exc
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        fields = [f for f in _SEPARATORS.split(line) if f]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise _error(seq, path, f"line {line_no}", f"non-numeric value in {line!r}") from None
        if width is None:
            width = len(values)
        if len(values) != width:
            raise _error(seq, path, f"line {line_no}", f"expected {width} values, got {len(values)} in {line!r}")
        if not all(np.isfinite(values)):
            raise _error(seq, path, f"line {line_no}", f"non-finite value in {line!r}")
        rows.append(values)
    if not rows:
        raise _error(seq, path, "file", "no rows")
    return np.asarray(rows, dtype=np.float64)


def read_boxes(path: Path, seq: str) -> np.ndarray:
    """A ground-truth file of ``x,y,w,h`` rows (top-left corner, pixels) -> float32 [F, 4]."""
    table = read_numeric_table(path, seq, columns=4)
    bad = np.flatnonzero((table[:, 2] < 0) | (table[:, 3] < 0))
    if len(bad):
        raise _error(seq, path, f"line {bad[0] + 1}", "negative box width or height")
    return table.astype(np.float32)


def read_flags(path: Path, seq: str) -> np.ndarray:
    """A file of one 0/1 value per line -> uint8 [F] (raw values, convention not applied)."""
    table = read_numeric_table(path, seq, columns=1)[:, 0]
    bad = np.flatnonzero((table != 0) & (table != 1))
    if len(bad):
        raise _error(seq, path, f"line {bad[0] + 1}", f"expected 0 or 1, got {table[bad[0]]:g}")
    return table.astype(np.uint8)


def to_absent(flags: np.ndarray, convention: AbsentConvention) -> np.ndarray:
    """Raw flags -> the native ``absent`` array (1 = target not visible)."""
    if AbsentConvention(convention) is AbsentConvention.ONE_MEANS_ABSENT:
        return flags.astype(np.uint8)
    return (1 - flags).astype(np.uint8)


def check_absent_against_boxes(
    absent: np.ndarray, boxes: np.ndarray, seq: str, path: Path, convention: AbsentConvention
) -> None:
    """Refuse flags whose meaning is evidently inverted.

    If no frame agrees with its box (every frame called visible has an empty box and every frame called
    absent has a non-empty one), the file almost surely uses the other convention; reading it as is would
    silently drop every visible frame from evaluation.
    """
    empty = (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)
    agree = ((absent == 1) & empty) | ((absent == 0) & ~empty)
    if len(absent) and not agree.any():
        raise _error(
            seq,
            path,
            "absent",
            f"read with '1 = {AbsentConvention(convention).value}' every flag contradicts its box "
            "(visible frames have empty boxes and absent frames have boxes): the file looks inverted; "
            "check the dataset copy or pass --absent-means to override",
        )


def time_ordered(
    events: EventArray, path: Path, seq: str, sort_events: bool = False, notes: list[str] | None = None
) -> EventArray:
    """``events`` as recorded when their timestamps never decrease. Otherwise a converter must not reorder recorded
    data silently: DataFormatError (where and how often) unless ``sort_events``, which sorts them by time (stable)
    and appends a line saying so to ``notes`` (``spiketrack data convert --sort-events`` prints it)."""
    if len(events) < 2:
        return events
    back = np.flatnonzero(np.diff(events.t) < 0)
    if not len(back):
        return events
    first = int(back[0]) + 1
    where = (f"{len(back)} place{'s' if len(back) != 1 else ''}, first at event {first} "
             f"(t {int(events.t[first])} after {int(events.t[first - 1])})")
    if not sort_events:
        raise _error(seq, path, "t", f"event timestamps decrease at {where}; the recording is not converted as it "
                                     "is: pass --sort-events to sort the events by time (reported when done)")
    if notes is not None:
        notes.append(f"sequence {seq}: sorted the events of {path.name} by time (timestamps decreased at {where})")
    return events.sorted_by_time()


def apply_absent(boxes: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """Boxes with absent frames set to 0,0,0,0 (what docs/architecture.md, "Sequence files" requires of absent
    frames)."""
    out = boxes.astype(np.float32, copy=True)
    out[absent == 1] = 0.0
    return out


def frame_number(path: Path) -> int:
    """Index in an image name such as ``0007.png``, ``frame0007.bmp`` (last run of digits)."""
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def list_images(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted by their frame number."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: (frame_number(p), p.name))


@dataclass(frozen=True)
class Annotations:
    """Boxes and absent flags of one sequence after conventions are applied."""

    boxes: np.ndarray  # float32 [F, 4]
    absent: np.ndarray  # uint8 [F]


def load_annotations(
    seq: str,
    gt_path: Path,
    absent_path: Path | None,
    convention: AbsentConvention | None,
) -> Annotations:
    """Read boxes and visibility flags, check lengths, apply the convention.

    Without a visibility file a frame is absent when its box is empty (w <= 0 or h <= 0), the rule the
    datasets' own loaders use (``valid = (w > 0) & (h > 0)``).
    """
    boxes = read_boxes(gt_path, seq)
    if absent_path is None:
        absent = ((boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)).astype(np.uint8)
    else:
        flags = read_flags(absent_path, seq)
        if len(flags) != len(boxes):
            raise _error(
                seq, absent_path, "rows", f"{len(flags)} visibility flags but {len(boxes)} boxes in {gt_path.name}"
            )
        assert convention is not None
        absent = to_absent(flags, convention)
        check_absent_against_boxes(absent, boxes, seq, absent_path, convention)
    return Annotations(apply_absent(boxes, absent), absent)
