"""Fixtures for the public-dataset readers: on-disk layouts built in tmp folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from spiketrack.data.events import EventArray
from spiketrack.data.readers.aedat4 import Aedat4Recording

ROAD = "davis346_road/recording.aedat4"


def write_rows(path: Path, rows, sep: str = ",") -> None:
    """One line per row, values joined by ``sep`` (integers written without decimals)."""
    def fmt(v) -> str:
        return str(int(v)) if float(v).is_integer() else repr(float(v))

    path.write_text("".join(sep.join(fmt(v) for v in np.atleast_1d(r)) + "\n" for r in rows))


@pytest.fixture
def road_aedat4(shared_data: Path) -> Path:
    path = shared_data / ROAD
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def davis_folder(tmp_path: Path, road_aedat4: Path):
    """Factory: a DAVIS sequence folder holding a copy of the real recording (59 APS frames)."""

    def make(root: Path, name: str, events_name: str, gt_name: str, boxes: np.ndarray,
             absent_file: tuple[str, list[int]] | None = None, sep: str = ",",
             extra_dirs: tuple[str, ...] = ()) -> Path:
        folder = root / name
        folder.mkdir(parents=True)
        shutil.copyfile(road_aedat4, folder / events_name.format(seq=name))
        write_rows(folder / gt_name, boxes, sep)
        if absent_file is not None:
            write_rows(folder / absent_file[0], absent_file[1])
        for d in extra_dirs:
            (folder / d.format(seq=name)).mkdir()
        return folder

    return make


def fake_recording(path: Path, n_frames: int = 5, width: int = 20, height: int = 10) -> Aedat4Recording:
    """A tiny recording: 3 events per 10 ms frame, frames at 10, 20, ... ms (exposure centres)."""
    frame_times = np.arange(1, n_frames + 1, dtype=np.int64) * 10_000
    t = np.concatenate([ft - np.array([9_000, 5_000, 0]) for ft in frame_times])
    n = len(t)
    events = EventArray.from_arrays(t, np.arange(n) % width, np.arange(n) % height, np.arange(n) % 2)
    frames = (np.arange(n_frames * height * width) % 251).astype(np.uint8).reshape(n_frames, height, width)
    return Aedat4Recording(path, width, height, events, frame_times, frames)


@pytest.fixture
def fake_decoder():
    """A decoder that ignores the file content (tests of annotations and alignment without AEDAT 4)."""
    def decode(path: Path) -> Aedat4Recording:
        if not path.is_file():
            from spiketrack.errors import DataFormatError
            raise DataFormatError(path, None, "AEDAT 4 file not found")
        n = int(path.read_text() or 5)
        return fake_recording(path, n_frames=n)

    return decode
