"""AEDAT 4 files (iniVation DV software; DAVIS346 recordings of FE108, VisEvent, COESOT, FELT).

Decoding goes through the maintained ``aedat`` package (Rust, PyPI ``aedat`` >= 2.0, MIT, International
Centre for Neuromorphic Systems): ``aedat.Decoder(path)`` yields packets, dicts with ``'events'``
(structured array ``t`` u64 µs, ``x``/``y`` u16, ``on`` bool) or ``'frame'`` (dict with ``t``, ``begin_t``,
``end_t``, ``exposure_begin_t``, ``exposure_end_t``, ``format``, ``width``, ``height``, ``pixels``), and
``id_to_stream()`` gives each stream's type and sensor size.

Frame time: an APS frame is stamped with its ``t`` field, the centre of the exposure (checked on
``davis346_road/recording.aedat4``: t = exposure_begin_t + 250 µs for a 500 µs exposure; dv-processing
2.0.4 reports ``exposure_begin_t`` as the frame timestamp of the same file). Frame k's events are then
``t[k-1] < t <= t[k]`` (docs/architecture.md, "Sequence files").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError


@dataclass(frozen=True)
class Aedat4Recording:
    """Everything a tracker needs from one AEDAT 4 file."""

    path: Path
    width: int
    height: int
    events: EventArray  # in file order (the sequence readers decide about sorting)
    frame_times: np.ndarray  # int64 [N] µs, exposure centre of each APS frame
    frames: np.ndarray  # uint8 [N, H, W] grayscale or [N, H, W, 3] colour APS frames

    @property
    def num_frames(self) -> int:
        return int(len(self.frame_times))


def _frame_to_uint8(pixels: np.ndarray, fmt: str, path: Path, index: int) -> np.ndarray:
    """An APS frame as uint8 gray [H, W] or colour [H, W, 3] (16-bit values keep their top 8 bits)."""
    arr = np.asarray(pixels)
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise DataFormatError(path, f"frame {index}", f"unsupported pixel type {arr.dtype} (format {fmt!r})")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and str(fmt).upper().startswith("BGR"):
        arr = arr[:, :, ::-1]
    if arr.ndim not in (2, 3):
        raise DataFormatError(path, f"frame {index}", f"unexpected frame shape {arr.shape}")
    return np.ascontiguousarray(arr)


def read_aedat4(path: str | Path, *, with_frames: bool = True) -> Aedat4Recording:
    """Decode an AEDAT 4 file: all polarity events (in file order) and all APS frames with their times.

    Raises :class:`DataFormatError` naming the file when it is missing, unreadable or has no event stream.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "AEDAT 4 file not found")
    try:
        import aedat
    except ImportError as exc:  # pragma: no cover - aedat is a core dependency
        raise DataFormatError(path, None, "reading AEDAT 4 needs the 'aedat' package (pip install aedat)") from exc
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
    except Exception as exc:  # the Rust decoder raises plain exceptions with a message
        raise DataFormatError(path, "header", f"not a readable AEDAT 4 file: {exc}") from exc
    event_streams = {i for i, s in streams.items() if s.get("type") == "events"}
    if not event_streams:
        raise DataFormatError(path, "streams", f"no event stream (streams: {sorted(s.get('type') for s in streams.values())})")
    first = min(event_streams)
    width, height = int(streams[first]["width"]), int(streams[first]["height"])
    parts: list[np.ndarray] = []
    times: list[int] = []
    frames: list[np.ndarray] = []
    try:
        for packet in decoder:
            if "events" in packet and packet.get("stream_id", first) == first:
                parts.append(packet["events"])
            elif "frame" in packet and with_frames:
                frame = packet["frame"]
                times.append(int(frame["t"]))
                frames.append(_frame_to_uint8(frame["pixels"], frame.get("format", ""), path, len(frames)))
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(path, "packets", f"corrupt or truncated AEDAT 4 data: {exc}") from exc
    if parts:
        raw = np.concatenate(parts)
        events = EventArray.from_arrays(raw["t"].astype(np.int64), raw["x"], raw["y"], raw["on"].astype(np.uint8))
    else:
        events = EventArray.empty()
    frame_times = np.asarray(times, dtype=np.int64)
    if frames:
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise DataFormatError(path, "frames", f"APS frames differ in shape: {sorted(shapes)}")
        stacked = np.stack(frames)
    else:
        stacked = np.zeros((0, height, width), np.uint8)
    if len(frame_times) > 1 and np.any(np.diff(frame_times) <= 0):
        order = np.argsort(frame_times, kind="stable")
        frame_times, stacked = frame_times[order], stacked[order]
        if np.any(np.diff(frame_times) == 0):
            raise DataFormatError(path, "frames", "two APS frames share one timestamp")
    return Aedat4Recording(path, width, height, events, frame_times, stacked)


def gray_to_rgb(frames: np.ndarray) -> np.ndarray:
    """[N, H, W] gray or [N, H, W, 3] -> uint8 [N, H, W, 3] (gray repeated over the three channels)."""
    if frames.ndim == 3:
        return np.repeat(frames[..., None], 3, axis=-1)
    return frames
