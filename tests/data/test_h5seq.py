from pathlib import Path

import h5py
import numpy as np
import pytest
from eventgen import make_events

from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import EVENT_CHUNK, open_sequence, validate_sequence, write_sequence
from spiketrack.errors import DataFormatError

W, H = 40, 30


def _write(path: Path, n_events: int = 5000, frames: int = 10, **overrides) -> dict:
    ft = np.arange(1, frames + 1, dtype=np.int64) * 1000
    boxes = np.tile(np.array([5, 6, 10, 8], np.float32), (frames, 1))
    absent = np.zeros(frames, np.uint8)
    if frames > 3:
        absent[3] = 1
        boxes[3] = 0
    kw = dict(name="seq", width=W, height=H, events=make_events(n_events, W, H, frames * 1000), frame_times=ft,
              boxes=boxes, absent=absent, attributes=["FM", "SV"], source="unit test")
    kw.update(overrides)
    write_sequence(path, **kw)
    return kw


def test_roundtrip_and_frame_windows(tmp_path: Path) -> None:
    kw = _write(tmp_path / "a.h5")
    ev = kw["events"]
    with open_sequence(tmp_path / "a.h5") as seq:
        assert (seq.name, seq.width, seq.height, seq.num_frames) == ("seq", W, H, 10)
        assert seq.attributes == ["FM", "SV"] and seq.source == "unit test"
        np.testing.assert_array_equal(seq.boxes, kw["boxes"])
        np.testing.assert_array_equal(seq.absent, kw["absent"])
        np.testing.assert_array_equal(seq.all_events().t, ev.t)
        # frame k: frames.t[k-1] < t <= frames.t[k]; frame 0: same length window before frames.t[0]
        assert seq.frame_window(0) == (0, 1000) and seq.frame_window(4) == (4000, 5000)
        total = 0
        for k in range(seq.num_frames):
            t0, t1 = seq.frame_window(k)
            got = seq.frame_events(k)
            want = ev[(ev.t > t0) & (ev.t <= t1)]
            for key in "txyp":
                np.testing.assert_array_equal(getattr(got, key), getattr(want, key))
            total += len(got)
        assert total == len(ev)
        assert not seq.has_rgb
        with pytest.raises(DataFormatError, match="frames/rgb"):
            seq.rgb(0)


def test_window_search_across_many_chunks(tmp_path: Path) -> None:
    # several chunks with long runs of equal timestamps at chunk borders
    n = EVENT_CHUNK * 3 + 123
    t = np.repeat(np.arange(n // 7 + 1, dtype=np.int64) * 3, 7)[:n]
    rng = np.random.default_rng(1)
    ev = EventArray.from_arrays(t, rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n))
    ft = np.linspace(t[0], t[-1], 20).astype(np.int64)
    ft[0] += 1
    _write(tmp_path / "b.h5", events=ev, frame_times=ft, boxes=np.ones((20, 4), np.float32),
           absent=np.zeros(20, np.uint8))
    with open_sequence(tmp_path / "b.h5") as seq:
        for t0, t1 in [(-5, 0), (0, 3), (3, 3), (int(t[EVENT_CHUNK]) - 3, int(t[EVENT_CHUNK])), (0, int(t[-1]) + 10),
                       (int(t[-1]), int(t[-1]) + 100)]:
            got = seq.events_between(t0, t1)
            assert len(got) == int(np.sum((t > t0) & (t <= t1))), (t0, t1)


def test_rgb_and_empty_event_stream(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (3, H, W, 3), dtype=np.uint8)
    _write(tmp_path / "c.h5", events=EventArray.empty(), frames=3, rgb=rgb,
           boxes=np.ones((3, 4), np.float32), absent=np.zeros(3, np.uint8))
    with open_sequence(tmp_path / "c.h5") as seq:
        assert seq.has_rgb and seq.num_events == 0
        np.testing.assert_array_equal(seq.rgb(2), rgb[2])
        assert len(seq.frame_events(1)) == 0
    assert validate_sequence(tmp_path / "c.h5") == []


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(boxes=np.ones((9, 4), np.float32)), "boxes"),
        (dict(absent=np.zeros(11, np.uint8)), "absent"),
        (dict(events=EventArray.from_arrays([5, 3], [0, 0], [0, 0], [1, 1])), "events/t"),
        (dict(events=EventArray.from_arrays([1, 2], [W, 0], [0, 0], [1, 1])), "events/x,y"),
        (dict(boxes=np.tile(np.array([1, 1, -2, 3], np.float32), (10, 1)), absent=np.zeros(10, np.uint8)), "boxes"),
        (dict(frame_times=np.array([1, 1, 2, 3, 4, 5, 6, 7, 8, 9]) * 1000), "frames/t"),
    ],
)
def test_writer_refuses_bad_data_and_leaves_nothing(tmp_path: Path, overrides: dict, field: str) -> None:
    with pytest.raises(DataFormatError, match=rf"bad\.h5 \[{field}\]"):
        _write(tmp_path / "bad.h5", **overrides)
    assert list(tmp_path.iterdir()) == []


def _corrupt(path: Path, fn) -> None:
    with h5py.File(path, "r+") as h5:
        fn(h5)


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda h5: h5.__delitem__("boxes"), "boxes"),
        (lambda h5: (h5.__delitem__("events/x"), h5.create_dataset("events/x", data=np.zeros(5000, np.int32))),
         "events/x"),
        (lambda h5: h5["events/t"].__setitem__(slice(10, 11), -1), "events/t"),
        (lambda h5: (h5.__delitem__("absent"), h5.create_dataset("absent", data=np.zeros(7, np.uint8))), "absent"),
        (lambda h5: h5["boxes"].__setitem__((0, 2), -3.0), "boxes"),
        (lambda h5: h5["events/y"].__setitem__(slice(0, 1), H + 5), "events/y"),
        (lambda h5: h5.attrs.__setitem__("format", "other"), "attrs/format"),
        (lambda h5: h5.attrs.__delitem__("width"), "attrs/width"),
    ],
)
def test_validate_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    path = tmp_path / "v.h5"
    _write(path)
    assert validate_sequence(path) == []
    _corrupt(path, mutate)
    violations = validate_sequence(path)
    assert any(v.field == field and v.path == str(path) for v in violations), violations


def test_open_rejects_structural_problems(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    _write(path)
    _corrupt(path, lambda h5: h5.__delitem__("frames/t"))
    with pytest.raises(DataFormatError, match=r"s\.h5 \[frames/t\]: missing dataset"):
        open_sequence(path)


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFormatError, match=r"t\.h5.*corrupt or truncated"):
        open_sequence(path)
    (v,) = validate_sequence(path)
    assert v.field == "file"


def test_sequence_pickles_by_path(tmp_path: Path) -> None:
    import pickle

    _write(tmp_path / "p.h5")
    with open_sequence(tmp_path / "p.h5") as seq:
        clone = pickle.loads(pickle.dumps(seq))
        assert len(clone.frame_events(2)) == len(seq.frame_events(2))
        clone.close()
