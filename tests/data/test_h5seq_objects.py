"""The optional ``/objects`` datasets of sequence files (every object of a multi-object scene annotated)."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from eventgen import make_events

from spiketrack.data.h5seq import open_sequence, validate_sequence, write_sequence
from spiketrack.data.sequence import MemorySequence
from spiketrack.errors import DataFormatError

W, H, F = 40, 30, 6


def _kw(**overrides) -> dict:
    boxes = np.tile(np.array([5, 6, 10, 8], np.float32), (F, 1))
    absent = np.zeros(F, np.uint8)
    other = np.tile(np.array([20, 10, 6, 6], np.float32), (F, 1))
    other_absent = np.zeros(F, np.uint8)
    other_absent[2], other[2] = 1, 0
    kw = dict(name="mo", width=W, height=H, events=make_events(500, W, H, F * 1000),
              frame_times=np.arange(1, F + 1, dtype=np.int64) * 1000, boxes=boxes, absent=absent,
              object_boxes=np.stack([boxes, other]), object_absent=np.stack([absent, other_absent]))
    kw.update(overrides)
    return kw


def test_objects_roundtrip_and_old_files_read_as_none(tmp_path: Path) -> None:
    kw = _kw()
    write_sequence(tmp_path / "mo.h5", **kw)
    assert validate_sequence(tmp_path / "mo.h5") == []
    with open_sequence(tmp_path / "mo.h5") as seq:
        assert seq.num_objects == 2
        np.testing.assert_array_equal(seq.object_boxes, kw["object_boxes"])
        np.testing.assert_array_equal(seq.object_absent, kw["object_absent"])
        boxes, absent = seq.object_track(1)
        assert absent[2] == 1 and np.array_equal(boxes[0], [20, 10, 6, 6])
    plain = {k: v for k, v in kw.items() if not k.startswith("object")}
    write_sequence(tmp_path / "plain.h5", **plain)
    with open_sequence(tmp_path / "plain.h5") as seq:
        assert seq.object_boxes is None and seq.num_objects == 1
        assert np.array_equal(seq.object_track(0)[0], plain["boxes"])
        with pytest.raises(IndexError):
            seq.object_track(1)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda kw: kw.update(object_absent=None), "objects"),
        (lambda kw: kw.update(object_boxes=kw["object_boxes"][:, :3]), "objects/boxes"),
        (lambda kw: kw.update(object_absent=kw["object_absent"][:1]), "objects/absent"),
        (lambda kw: kw["object_boxes"].__setitem__((1, 2), [1, 1, 2, 2]), "objects/boxes"),  # absent but a box
        (lambda kw: kw["object_boxes"].__setitem__((0, 1, 0), 7.0), "objects/boxes"),  # object 0 != /boxes
    ],
)
def test_bad_objects_are_refused_naming_the_field(tmp_path: Path, change, field: str) -> None:
    kw = _kw()
    kw["object_boxes"] = kw["object_boxes"].copy()
    change(kw)
    with pytest.raises(DataFormatError, match=field):
        write_sequence(tmp_path / "bad.h5", **kw)


def test_validate_and_open_report_broken_object_datasets(tmp_path: Path) -> None:
    path = tmp_path / "mo.h5"
    write_sequence(path, **_kw())
    with h5py.File(path, "a") as h5:
        del h5["objects/absent"]
    assert [v.field for v in validate_sequence(path)] == ["objects/absent"]
    with pytest.raises(DataFormatError, match="objects/absent"):
        open_sequence(path)
    with h5py.File(path, "a") as h5:
        h5["objects/absent"] = np.zeros((2, F), np.uint8)  # object 1 absent=0 at frame 2 is fine; object 0 equal
        h5["objects/boxes"][0, 0] = [0, 0, 1, 1]
    assert [v.field for v in validate_sequence(path)] == ["objects/boxes"]


def test_memory_sequence_keeps_objects() -> None:
    kw = _kw()
    seq = MemorySequence("m", W, H, kw["events"], kw["frame_times"], kw["boxes"], kw["absent"],
                         object_boxes=kw["object_boxes"], object_absent=kw["object_absent"])
    assert seq.num_objects == 2 and seq.object_boxes.dtype == np.float32
    with pytest.raises(DataFormatError, match="objects"):
        MemorySequence("m", W, H, kw["events"], kw["frame_times"], kw["boxes"], kw["absent"],
                       object_boxes=kw["object_boxes"])
