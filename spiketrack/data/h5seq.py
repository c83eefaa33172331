"""Native sequence files: one HDF5 file per sequence (docs/architecture.md, "Sequence files").

Layout::

    attrs  format="spiketrack-sequence", version=1, name, width, height, source, attributes (JSON list)
    /events/t int64 [N] µs (non-decreasing)   /events/x uint16   /events/y uint16   /events/p uint8 (1 = ON)
    /frames/t int64 [F] µs                     /frames/rgb uint8 [F, H, W, 3] (optional)
    /boxes float32 [F, 4] x, y, w, h            /absent uint8 [F] (1 = not visible, box 0,0,0,0)
    /objects/boxes float32 [K, F, 4]            /objects/absent uint8 [K, F]   (optional, both or neither)
    /visible float32 [F]                        /objects/visible float32 [K, F]  (optional, shares in [0, 1])
    attrs  scene (optional): the scene the sequence was recorded in (default: its name)

The optional ``/objects`` group annotates every object of a multi-object scene (index 0 = the primary target,
whose rows equal ``/boxes`` and ``/absent``); files without it stay valid and read as ``object_boxes = None``.
The optional visibility datasets give the share of each object's area that is visible in each frame (the
synthetic benchmark writes them; the sampler uses them to pick clean template frames). ``scene`` ties several
sequences of one recording together (the synthetic benchmark's per-object test sequences ``<scene>_o<k>``), so
the template-dependence probe never borrows a "foreign" template from the same scene.

Writes are chunked and compressed and go to a temporary name that is renamed when complete, so an
interrupted write never leaves a file that looks finished. Reads open lazily and fetch only the asked
frame window: a binary search over ``/events/t`` that decompresses a handful of chunks, never the stream.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spiketrack.atomic import temp_path
from spiketrack.data.events import P_DTYPE, T_DTYPE, XY_DTYPE, EventArray
from spiketrack.data.sequence import Sequence
from spiketrack.errors import DataFormatError, output_error

FORMAT_NAME = "spiketrack-sequence"
FORMAT_VERSION = 1
IN_MEMORY_WRITE_BYTES = 1 << 30  # see write_sequence
EVENT_CHUNK = 1 << 16  # events per chunk: 512 KiB of raw timestamps, a few ms to decompress
_COMPRESSION = dict(compression="gzip", compression_opts=1, shuffle=True)

REQUIRED_DATASETS: dict[str, np.dtype] = {
    "events/t": np.dtype(T_DTYPE),
    "events/x": np.dtype(XY_DTYPE),
    "events/y": np.dtype(XY_DTYPE),
    "events/p": np.dtype(P_DTYPE),
    "frames/t": np.dtype(np.int64),
    "boxes": np.dtype(np.float32),
    "absent": np.dtype(np.uint8),
}
REQUIRED_ATTRS = ("format", "version", "name", "width", "height", "source", "attributes")
# A visible box lies inside the image enlarged by this many image sizes on every side (x in [-W, 2W], ...): a
# target leaving the view keeps a partly or wholly outside box for a while, a box at 1e9 is a broken annotation.
BOX_MARGIN = 1.0
OBJECT_DATASETS: dict[str, np.dtype] = {"objects/boxes": np.dtype(np.float32), "objects/absent": np.dtype(np.uint8)}
VISIBILITY_DATASETS = ("visible", "objects/visible")  # optional, float32, shares in [0, 1]


@dataclass(frozen=True)
class Violation:
    """One broken rule of the sequence format (docs/architecture.md, "Sequence files") in one file."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path} [{self.field}]: {self.message}"


def box_violations(p: str, boxes: np.ndarray, absent: np.ndarray, width: int, height: int) -> list[Violation]:
    """Box rules beyond shape and finiteness: the first frame's box (which initialises a tracker) is visible with a
    positive width and height, and every visible box lies inside the image enlarged by ``BOX_MARGIN``.

    ``boxes`` [F, 4] finite x, y, w, h; ``absent`` [F] (1 = not visible).
    """
    out: list[Violation] = []
    if len(boxes) and (absent[0] != 0 or not (boxes[0, 2] > 0 and boxes[0, 3] > 0)):
        state = "marked absent" if absent[0] != 0 else f"{boxes[0].tolist()}"
        out.append(Violation(p, "boxes[0]", f"the first frame's box must be visible with a positive width and height "
                                            f"(it initialises the tracker), got {state}"))
    mx, my = BOX_MARGIN * width, BOX_MARGIN * height
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    outside = (absent == 0) & ((x < -mx) | (y < -my) | (x + w > width + mx) | (y + h > height + my))
    if np.any(outside):
        rows = np.nonzero(outside)[0]
        out.append(Violation(
            p, f"boxes[{rows[0]}]",
            f"box {boxes[rows[0]].tolist()} reaches beyond the {width}x{height} image and its margin of {BOX_MARGIN:g} "
            f"image size (x in [{-mx:g}, {width + mx:g}], y in [{-my:g}, {height + my:g}]); frames {rows[:5].tolist()}"
            f"{' ...' if len(rows) > 5 else ''}"))
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _check_before_write(
    path: Path,
    width: int,
    height: int,
    events: EventArray,
    frame_times: np.ndarray,
    boxes: np.ndarray,
    absent: np.ndarray,
    rgb: np.ndarray | None,
    objects: tuple[np.ndarray, np.ndarray] | None = None,
    visible: np.ndarray | None = None,
    object_visible: np.ndarray | None = None,
) -> None:
    """Refuse to write a file that would break the sequence format (same rules as :func:`validate_sequence`)."""
    f = len(frame_times)
    problems: list[tuple[str, str]] = []
    if width <= 0 or height <= 0:
        problems.append(("width/height", f"sensor size must be positive, got {width}x{height}"))
    if len(events) and np.any(np.diff(events.t) < 0):
        problems.append(("events/t", "timestamps decrease"))
    if len(events) and (int(events.x.max()) >= width or int(events.y.max()) >= height):
        problems.append(("events/x,y", f"events outside the {width}x{height} sensor"))
    if len(events) and int(events.p.max()) > 1:
        problems.append(("events/p", "polarity must be 0 (OFF) or 1 (ON)"))
    if f == 0:
        problems.append(("frames/t", "no frames"))
    elif np.any(np.diff(frame_times) <= 0):
        problems.append(("frames/t", "frame timestamps must increase strictly"))
    if boxes.shape != (f, 4):
        problems.append(("boxes", f"expected shape ({f}, 4) for {f} frames, got {boxes.shape}"))
    if absent.shape != (f,):
        problems.append(("absent", f"expected shape ({f},) for {f} frames, got {absent.shape}"))
    if rgb is not None and rgb.shape != (f, height, width, 3):
        problems.append(("frames/rgb", f"expected shape ({f}, {height}, {width}, 3), got {rgb.shape}"))
    if boxes.shape == (f, 4):
        if not np.all(np.isfinite(boxes)):
            problems.append(("boxes", "non-finite values (NaN or inf)"))
        if np.any(boxes[:, 2:] < 0):
            problems.append(("boxes", "negative box width or height"))
        if absent.shape == (f,) and np.any((absent == 1) & np.any(boxes != 0, axis=1)):
            problems.append(("boxes", "absent frames must have box 0,0,0,0"))
        if absent.shape == (f,) and np.all(np.isfinite(boxes)) and width > 0 and height > 0:
            problems.extend((v.field, v.message) for v in box_violations(str(path), boxes, absent, width, height))
    if absent.shape == (f,) and np.any(absent > 1):
        problems.append(("absent", "values must be 0 or 1"))
    if objects is not None:
        problems.extend((v.field, v.message) for v in _object_violations(str(path), objects[0], objects[1], boxes, absent))
    if object_visible is not None and objects is None:
        problems.append(("objects/visible", "needs objects/boxes and objects/absent"))
    problems.extend((v.field, v.message) for v in _visibility_violations(
        str(path), visible, object_visible, f, None if objects is None else len(objects[0])))
    if problems:
        field, message = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataFormatError(path, field, message + more)


def write_sequence(
    path: str | Path,
    *,
    name: str,
    width: int,
    height: int,
    events: EventArray,
    frame_times: np.ndarray,
    boxes: np.ndarray,
    absent: np.ndarray,
    rgb: np.ndarray | None = None,
    attributes: Iterable[str] = (),
    source: str = "",
    object_boxes: np.ndarray | None = None,
    object_absent: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    object_visible: np.ndarray | None = None,
    scene: str | None = None,
) -> Path:
    """Write one sequence file atomically (temporary name, then rename). Returns the final path.

    ``object_boxes`` float32 ``[K, F, 4]`` and ``object_absent`` uint8 ``[K, F]`` (both or neither) annotate every
    object of a multi-object scene, the primary target at index 0 (its rows must equal ``boxes``/``absent``).
    ``visible`` float32 ``[F]`` / ``object_visible`` ``[K, F]``: visible share of the target's / each object's area
    (optional); ``scene``: the recording the sequence belongs to (optional, default its name).
    """
    path = Path(path)
    frame_times = np.asarray(frame_times, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float32)
    absent = np.asarray(absent, dtype=np.uint8)
    events = EventArray.from_arrays(events.t, events.x, events.y, events.p)
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8:
            raise DataFormatError(path, "frames/rgb", f"expected uint8, got {rgb.dtype}")
    if (object_boxes is None) != (object_absent is None):
        raise DataFormatError(path, "objects", "give both objects/boxes and objects/absent, or neither")
    objects = None
    if object_boxes is not None:
        objects = (np.asarray(object_boxes, dtype=np.float32), np.asarray(object_absent, dtype=np.uint8))
    visible = None if visible is None else np.asarray(visible, dtype=np.float32)
    object_visible = None if object_visible is None else np.asarray(object_visible, dtype=np.float32)
    _check_before_write(path, width, height, events, frame_times, boxes, absent, rgb, objects, visible, object_visible)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    # Files up to IN_MEMORY_WRITE_BYTES (raw) are built in memory and written by Python in one go: a full disk
    # then fails in one plain write (OSError ENOSPC, temporary file removed) instead of inside HDF5, whose
    # half-closed handles report errors from their destructors (or crash) long after the failed write.
    raw = len(events) * 13 + (rgb.nbytes if rgb is not None else 0) + boxes.nbytes
    buffer = io.BytesIO() if raw <= IN_MEMORY_WRITE_BYTES else None
    try:
        with h5py.File(buffer if buffer is not None else tmp, "w") as h5:
            h5.attrs["format"] = FORMAT_NAME
            h5.attrs["version"] = FORMAT_VERSION
            h5.attrs["name"] = name
            h5.attrs["width"] = int(width)
            h5.attrs["height"] = int(height)
            h5.attrs["source"] = source
            h5.attrs["attributes"] = json.dumps(list(attributes))
            if scene is not None and scene != name:
                h5.attrs["scene"] = scene
            chunk = (max(1, min(EVENT_CHUNK, len(events))),)
            for key in ("t", "x", "y", "p"):
                h5.create_dataset(
                    f"events/{key}", data=getattr(events, key), chunks=chunk, maxshape=(None,), **_COMPRESSION
                )
            h5.create_dataset("frames/t", data=frame_times)
            if rgb is not None:
                h5.create_dataset("frames/rgb", data=rgb, chunks=(1, height, width, 3), **_COMPRESSION)
            h5.create_dataset("boxes", data=boxes)
            h5.create_dataset("absent", data=absent)
            if objects is not None:
                h5.create_dataset("objects/boxes", data=objects[0])
                h5.create_dataset("objects/absent", data=objects[1])
            for key, data in (("visible", visible), ("objects/visible", object_visible)):
                if data is not None:
                    h5.create_dataset(key, data=data)
        if buffer is not None:
            tmp.write_bytes(buffer.getbuffer())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        # HDF5's message names only the temporary file: name the sequence file instead
        error = output_error(exc, path, "the sequence file") if isinstance(exc, OSError) else None
        if error is not None:
            raise error from None
        raise
    return path


def save_sequence(path: str | Path, seq: object, *, rgb: np.ndarray | None = None, source: str | None = None) -> Path:
    """Write an in-memory sequence (``name``, ``width``, ``height``, ``events``, ``frame_times``, ``boxes``,
    ``absent``, ``attributes``, ``source`` and optionally ``object_boxes``/``object_absent``, ``visible``/
    ``object_visible`` and ``scene``) with :func:`write_sequence`; ``source`` replaces its own."""
    return write_sequence(
        path,
        name=seq.name,
        width=seq.width,
        height=seq.height,
        events=seq.events,
        frame_times=seq.frame_times,
        boxes=seq.boxes,
        absent=seq.absent,
        rgb=rgb,
        attributes=seq.attributes,
        source=seq.source if source is None else source,
        object_boxes=getattr(seq, "object_boxes", None),
        object_absent=getattr(seq, "object_absent", None),
        visible=getattr(seq, "visible", None),
        object_visible=getattr(seq, "object_visible", None),
        scene=getattr(seq, "scene", None),
    )


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _open_h5(path: Path) -> h5py.File:
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(path, None, f"not a readable HDF5 file (corrupt or truncated?): {exc}") from exc


def _structure_violations(path: Path, h5: h5py.File) -> list[Violation]:
    """Cheap checks: attributes, datasets, dtypes and lengths (no pass over the event stream)."""
    out: list[Violation] = []
    p = str(path)
    for key in REQUIRED_ATTRS:
        if key not in h5.attrs:
            out.append(Violation(p, f"attrs/{key}", "missing root attribute"))
    if h5.attrs.get("format") not in (None, FORMAT_NAME):
        out.append(Violation(p, "attrs/format", f"expected '{FORMAT_NAME}', got {h5.attrs.get('format')!r}"))
    if "version" in h5.attrs and int(h5.attrs["version"]) != FORMAT_VERSION:
        out.append(Violation(p, "attrs/version", f"expected {FORMAT_VERSION}, got {h5.attrs['version']}"))
    for key in ("width", "height"):
        if key in h5.attrs and int(h5.attrs[key]) <= 0:
            out.append(Violation(p, f"attrs/{key}", f"must be positive, got {h5.attrs[key]}"))
    if "attributes" in h5.attrs:
        try:
            codes = json.loads(h5.attrs["attributes"])
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ValueError("not a list of strings")
        except (ValueError, TypeError) as exc:
            out.append(Violation(p, "attrs/attributes", f"expected a JSON list of attribute codes ({exc})"))
    for key, dtype in REQUIRED_DATASETS.items():
        if key not in h5:
            out.append(Violation(p, key, "missing dataset"))
        elif not isinstance(h5[key], h5py.Dataset):
            out.append(Violation(p, key, "expected a dataset, found a group"))
        elif h5[key].dtype != dtype:
            out.append(Violation(p, key, f"expected dtype {dtype}, got {h5[key].dtype}"))
    if any(v.field in REQUIRED_DATASETS for v in out):
        return out
    n = h5["events/t"].shape
    for key in ("x", "y", "p"):
        if h5[f"events/{key}"].shape != n:
            out.append(Violation(p, f"events/{key}", f"length {h5[f'events/{key}'].shape} differs from events/t {n}"))
    f = h5["frames/t"].shape[0] if h5["frames/t"].ndim == 1 else -1
    if f <= 0:
        out.append(Violation(p, "frames/t", f"expected a non-empty 1-D array, got shape {h5['frames/t'].shape}"))
    if h5["boxes"].shape != (f, 4):
        out.append(Violation(p, "boxes", f"expected shape ({f}, 4) for {f} frames, got {h5['boxes'].shape}"))
    if h5["absent"].shape != (f,):
        out.append(Violation(p, "absent", f"expected shape ({f},) for {f} frames, got {h5['absent'].shape}"))
    out.extend(_object_structure_violations(p, h5, f))
    for key in VISIBILITY_DATASETS:
        if key in h5 and (not isinstance(h5[key], h5py.Dataset) or h5[key].dtype != np.float32):
            out.append(Violation(p, key, "expected a float32 dataset"))
    if "objects/visible" in h5 and "objects/boxes" not in h5:
        out.append(Violation(p, "objects/visible", "needs objects/boxes and objects/absent"))
    if "scene" in h5.attrs and not isinstance(h5.attrs["scene"], str):
        out.append(Violation(p, "attrs/scene", f"expected a string, got {h5.attrs['scene']!r}"))
    if "frames/rgb" in h5:
        rgb = h5["frames/rgb"]
        want = (f, int(h5.attrs.get("height", -1)), int(h5.attrs.get("width", -1)), 3)
        if rgb.dtype != np.uint8:
            out.append(Violation(p, "frames/rgb", f"expected dtype uint8, got {rgb.dtype}"))
        if rgb.shape != want:
            out.append(Violation(p, "frames/rgb", f"expected shape {want}, got {rgb.shape}"))
    return out


def _read(path: Path, ds: h5py.Dataset, index: Any, field: str) -> np.ndarray:
    """``ds[index]``; a chunk that does not decompress (h5py OSError) is a DataFormatError naming file and field."""
    try:
        return ds[index]
    except OSError as exc:
        raise DataFormatError(path, field, f"cannot read the data (corrupt compressed chunk?): {exc}") from None


# validate_sequence's verdict per file version: readers check a file once per process
_CHECKED: dict[tuple, list[Violation]] = {}


def file_version(path: Path) -> tuple[str, int, int, int]:
    """(resolved path, size, mtime_ns, inode): a key that changes when the file is rewritten (raises OSError)."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino


def check_sequence_content(path: str | Path) -> None:
    """Raise DataFormatError (file, field) for the first rule of the sequence format that ``path`` breaks.

    The same rules as ``spiketrack data validate`` (event order, sensor bounds, polarity, frame times, boxes)
    except the intensity frames' chunks, which are checked when read. The verdict is cached per file version,
    so a file opened many times (training samples, worker processes) is read through once per process.
    """
    path = Path(path)
    try:
        key = file_version(path)
    except OSError:
        key = None
    problems = _CHECKED.get(key) if key is not None else None
    if problems is None:
        problems = validate_sequence(path, read_rgb=False)
        if key is not None:
            if len(_CHECKED) > 4096:
                _CHECKED.clear()
            _CHECKED[key] = problems
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run `spiketrack data validate`)" if len(problems) > 1 else ""
        raise DataFormatError(path, first.field, first.message + more)


def _object_structure_violations(p: str, h5: h5py.File, f: int) -> list[Violation]:
    """Dtypes and shapes of the optional ``/objects`` datasets (both or neither; ``[K, F, 4]`` and ``[K, F]``)."""
    present = [key for key in OBJECT_DATASETS if key in h5]
    if not present:
        return []
    out: list[Violation] = []
    for key, dtype in OBJECT_DATASETS.items():
        if key not in h5:
            out.append(Violation(p, key, f"missing dataset ({present[0]} exists; give both or neither)"))
        elif not isinstance(h5[key], h5py.Dataset):
            out.append(Violation(p, key, "expected a dataset, found a group"))
        elif h5[key].dtype != dtype:
            out.append(Violation(p, key, f"expected dtype {dtype}, got {h5[key].dtype}"))
    if out:
        return out
    ob, oa = h5["objects/boxes"], h5["objects/absent"]
    if ob.ndim != 3 or ob.shape[1:] != (f, 4) or ob.shape[0] < 1:
        out.append(Violation(p, "objects/boxes", f"expected shape (K, {f}, 4) with K >= 1, got {ob.shape}"))
    elif oa.shape != ob.shape[:2]:
        out.append(Violation(p, "objects/absent", f"expected shape {ob.shape[:2]}, got {oa.shape}"))
    return out


def _object_violations(
    p: str, object_boxes: np.ndarray, object_absent: np.ndarray, boxes: np.ndarray, absent: np.ndarray
) -> list[Violation]:
    """Value rules of ``/objects``: shapes, finite non-negative sizes, absent -> 0 box, object 0 = ``/boxes``."""
    out: list[Violation] = []
    f = len(boxes)
    if object_boxes.ndim != 3 or object_boxes.shape[1:] != (f, 4) or object_boxes.shape[0] < 1:
        return [Violation(p, "objects/boxes", f"expected shape (K, {f}, 4) with K >= 1, got {object_boxes.shape}")]
    if object_absent.shape != object_boxes.shape[:2]:
        return [Violation(p, "objects/absent", f"expected shape {object_boxes.shape[:2]}, got {object_absent.shape}")]
    if not np.all(np.isfinite(object_boxes)):
        out.append(Violation(p, "objects/boxes", "non-finite values (NaN or inf)"))
    elif np.any(object_boxes[..., 2:] < 0):
        out.append(Violation(p, "objects/boxes", "negative box width or height"))
    if np.any(object_absent > 1):
        out.append(Violation(p, "objects/absent", "values must be 0 or 1"))
    if np.any((object_absent == 1) & np.any(object_boxes != 0, axis=2)):
        out.append(Violation(p, "objects/boxes", "absent frames must have box 0,0,0,0"))
    if not (np.array_equal(object_boxes[0], boxes) and np.array_equal(object_absent[0], absent)):
        out.append(Violation(p, "objects/boxes", "object 0 must be the primary target (equal to /boxes and /absent)"))
    return out


def _visibility_violations(
    p: str, visible: np.ndarray | None, object_visible: np.ndarray | None, f: int, k: int | None
) -> list[Violation]:
    """Value rules of the optional visibility datasets: shapes ``[F]`` / ``[K, F]`` and finite shares in [0, 1]."""
    out: list[Violation] = []
    for key, data, shape in (("visible", visible, (f,)), ("objects/visible", object_visible, (k, f))):
        if data is None:
            continue
        if data.shape != shape:
            out.append(Violation(p, key, f"expected shape {shape}, got {data.shape}"))
        elif not np.all(np.isfinite(data)) or np.any((data < 0) | (data > 1)):
            out.append(Violation(p, key, "visible shares must be finite and in [0, 1]"))
    if visible is not None and object_visible is not None and not out and not np.array_equal(object_visible[0], visible):
        out.append(Violation(p, "objects/visible", "object 0 must be the primary target (equal to /visible)"))
    return out


class H5Sequence(Sequence):
    """A native sequence file opened for reading; events are fetched per window, never all at once."""

    def __init__(self, path: str | Path, fileobj: object | None = None) -> None:
        """Open ``path``; ``fileobj`` (a Python file object) replaces the OS file, e.g. to count bytes read."""
        self.path = Path(path)
        self._h5 = _open_h5(self.path) if fileobj is None else h5py.File(fileobj, "r")
        try:
            problems = _structure_violations(self.path, self._h5)
            if problems:
                first = problems[0]
                more = f" (and {len(problems) - 1} more; run `spiketrack data validate`)" if len(problems) > 1 else ""
                raise DataFormatError(self.path, first.field, first.message + more)
            if self.path.is_file():
                check_sequence_content(self.path)
            attrs = self._h5.attrs
            self.name = str(attrs["name"])
            self.width = int(attrs["width"])
            self.height = int(attrs["height"])
            self.source = str(attrs["source"])
            self.attributes = list(json.loads(attrs["attributes"]))
            self.frame_times = self._h5["frames/t"][()]
            self.boxes = self._h5["boxes"][()]
            self.absent = self._h5["absent"][()]
            if "objects/boxes" in self._h5:
                self.object_boxes = self._h5["objects/boxes"][()]
                self.object_absent = self._h5["objects/absent"][()]
            self.visible = self._h5["visible"][()] if "visible" in self._h5 else None
            self.object_visible = self._h5["objects/visible"][()] if "objects/visible" in self._h5 else None
            self.scene = str(attrs["scene"]) if "scene" in attrs else self.name
        except BaseException:
            self._h5.close()
            raise
        self._t = self._h5["events/t"]
        self._chunk = self._t.chunks[0] if self._t.chunks else max(1, self._t.shape[0])
        self._chunk_cache: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def num_events(self) -> int:
        return int(self._t.shape[0])

    @property
    def has_rgb(self) -> bool:
        return "frames/rgb" in self._h5

    def _t_chunk(self, c: int) -> np.ndarray:
        """Timestamps of chunk c, from a small LRU cache (windows of successive frames share chunks)."""
        cached = self._chunk_cache.get(c)
        if cached is not None:
            self._chunk_cache.move_to_end(c)
            return cached
        data = _read(self.path, self._t, slice(c * self._chunk, (c + 1) * self._chunk), "events/t")
        self._chunk_cache[c] = data
        if len(self._chunk_cache) > 8:
            self._chunk_cache.popitem(last=False)
        return data

    def _index_after(self, value: int) -> int:
        """Number of events with ``t <= value`` (searchsorted side='right'), reading O(log chunks) chunks."""
        n = self.num_events
        if n == 0:
            return 0
        lo, hi = 0, (n - 1) // self._chunk  # find the last chunk whose first t <= value
        if self._t_chunk(0)[0] > value:
            return 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._t_chunk(mid)[0] <= value:
                lo = mid
            else:
                hi = mid - 1
        data = self._t_chunk(lo)
        return lo * self._chunk + int(np.searchsorted(data, value, side="right"))

    def events_between(self, t0: int, t1: int) -> EventArray:
        i0, i1 = self._index_after(t0), self._index_after(t1)
        if i1 <= i0:
            return EventArray.empty()
        g, p = self._h5["events"], self.path
        t = _read(p, self._t, slice(i0, i1), "events/t")
        return EventArray(t, *(_read(p, g[k], slice(i0, i1), f"events/{k}") for k in ("x", "y", "p")))

    def all_events(self) -> EventArray:
        """The whole stream (for conversion and validation; tracking reads windows)."""
        g = self._h5["events"]
        return EventArray(*(_read(self.path, g[k], (), f"events/{k}") for k in ("t", "x", "y", "p")))

    def rgb(self, k: int) -> np.ndarray:
        if not self.has_rgb:
            return super().rgb(k)
        return _read(self.path, self._h5["frames/rgb"], k, f"frames/rgb[{k}]")

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.close()

    def __getstate__(self) -> dict:
        # h5py handles cannot cross process boundaries; worker processes reopen the file by path.
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


def open_sequence(path: str | Path) -> H5Sequence:
    """Open a native sequence file; a broken file raises :class:`DataFormatError` naming file and field."""
    return H5Sequence(path)


def validate_sequence(path: str | Path, read_rgb: bool = True) -> list[Violation]:
    """Every rule of the sequence format, checked over the whole file; an empty list means the file is valid.

    Every chunk is read (``read_rgb=False``: all but the intensity frames'), so a corrupt compressed chunk is
    reported as a violation of its dataset.
    """
    path = Path(path)
    try:
        return _validate_open(path, read_rgb)
    except DataFormatError as exc:
        return [Violation(str(path), exc.field or "file", exc.problem)]


def _validate_open(path: Path, read_rgb: bool) -> list[Violation]:
    try:
        h5 = _open_h5(path)
    except DataFormatError as exc:
        return [Violation(str(path), "file", exc.problem)]
    p = str(path)
    with h5:
        out = _structure_violations(path, h5)
        if any(v.field in REQUIRED_DATASETS or v.field.startswith("attrs/w") or v.field.startswith("attrs/h")
               for v in out):
            return out
        width, height = int(h5.attrs["width"]), int(h5.attrs["height"])
        t_ds = h5["events/t"]
        step = t_ds.chunks[0] * 16 if t_ds.chunks else max(1, t_ds.shape[0])
        last = None
        bad_t = bad_x = bad_y = bad_p = False
        for start in range(0, t_ds.shape[0], step):
            sl = slice(start, start + step)
            t = _read(path, t_ds, sl, "events/t")
            if len(t) and ((last is not None and t[0] < last) or np.any(np.diff(t) < 0)):
                bad_t = True
            last = t[-1] if len(t) else last
            bad_x |= bool(len(t) and _read(path, h5["events/x"], sl, "events/x").max() >= width)
            bad_y |= bool(len(t) and _read(path, h5["events/y"], sl, "events/y").max() >= height)
            bad_p |= bool(len(t) and _read(path, h5["events/p"], sl, "events/p").max() > 1)
        if read_rgb and "frames/rgb" in h5:
            rgb = h5["frames/rgb"]
            per = max(1, rgb.chunks[0] if rgb.chunks else 1) * 8
            for k in range(0, rgb.shape[0], per):
                _read(path, rgb, slice(k, k + per), f"frames/rgb[{k}:{min(k + per, rgb.shape[0])}]")
        if bad_t:
            out.append(Violation(p, "events/t", "timestamps decrease (must be non-decreasing)"))
        if bad_x:
            out.append(Violation(p, "events/x", f"x outside the sensor (width {width})"))
        if bad_y:
            out.append(Violation(p, "events/y", f"y outside the sensor (height {height})"))
        if bad_p:
            out.append(Violation(p, "events/p", "polarity must be 0 (OFF) or 1 (ON)"))
        ft = _read(path, h5["frames/t"], (), "frames/t")
        if np.any(np.diff(ft) <= 0):
            out.append(Violation(p, "frames/t", "frame timestamps must increase strictly"))
        boxes, absent = _read(path, h5["boxes"], (), "boxes"), _read(path, h5["absent"], (), "absent")
        if not np.all(np.isfinite(boxes)):
            out.append(Violation(p, "boxes", "non-finite values (NaN or inf)"))
        if np.any(boxes[:, 2:] < 0):
            rows = np.nonzero(np.any(boxes[:, 2:] < 0, axis=1))[0]
            out.append(Violation(p, "boxes", f"negative width or height at frames {rows[:5].tolist()}"))
        if np.any(absent > 1):
            out.append(Violation(p, "absent", "values must be 0 or 1"))
        absent_bad = (absent == 1) & np.any(boxes != 0, axis=1)
        if np.any(absent_bad):
            rows = np.nonzero(absent_bad)[0]
            out.append(Violation(p, "boxes", f"absent frames must have box 0,0,0,0; frames {rows[:5].tolist()}"))
        if np.all(np.isfinite(boxes)) and np.all(absent <= 1):
            out.extend(box_violations(p, boxes, absent, width, height))
        if "objects/boxes" in h5 and not any(v.field.startswith("objects") for v in out):
            out.extend(_object_violations(p, h5["objects/boxes"][()], h5["objects/absent"][()], boxes, absent))
        if not any(v.field in VISIBILITY_DATASETS for v in out):
            vis = {key: _read(path, h5[key], (), key) if key in h5 else None for key in VISIBILITY_DATASETS}
            k = h5["objects/boxes"].shape[0] if "objects/boxes" in h5 else None
            out.extend(_visibility_violations(p, vis["visible"], vis["objects/visible"], len(boxes), k))
    return out
