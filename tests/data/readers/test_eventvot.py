"""EventVOT layout: CSV events, equal-slice frame times, absent.txt with 1 = present, splits, attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spiketrack.data.readers import open_public_dataset
from spiketrack.data.readers.eventvot import equal_slice_times, open_eventvot_sequence, read_event_csv
from spiketrack.errors import DataFormatError

from .conftest import write_rows

# x, y, p, t — 8 events over 100..500 µs
EVENTS = np.array(
    [[5, 1, 1, 100], [6, 2, 0, 150], [7, 3, 1, 200], [1279, 719, 1, 250],
     [9, 5, 0, 300], [10, 6, 1, 350], [11, 7, 0, 400], [12, 8, 1, 500]], dtype=np.int64)
BOXES = [[10, 20, 30, 40], [0, 0, 0, 0], [12, 22, 30, 40], [14, 24, 31.5, 40]]
PRESENT = [1, 0, 1, 1]  # EventVOT absent.txt: 1 = present


def make_eventvot_seq(root: Path, name: str, *, header: str | None = None, events=EVENTS, boxes=BOXES,
                      present=PRESENT, n_images: int | None = None, sep: str = ",") -> Path:
    folder = root / name
    (folder / "img").mkdir(parents=True)
    for k in range(len(boxes) if n_images is None else n_images):
        (folder / "img" / f"{k:04d}.png").write_bytes(b"")
    lines = ([header] if header else []) + [",".join(str(v) for v in row) for row in events]
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    write_rows(folder / "groundtruth.txt", boxes, sep)
    write_rows(folder / "absent.txt", present)
    return folder


def test_round_trip_in_place(tmp_path):
    folder = make_eventvot_seq(tmp_path, "recording_2022-10-10_17-28-38")
    seq = open_eventvot_sequence(folder)
    assert (seq.name, seq.width, seq.height, seq.num_frames) == ("recording_2022-10-10_17-28-38", 1280, 720, 4)
    assert seq.events.t.tolist() == EVENTS[:, 3].tolist()
    assert seq.events.x.tolist() == EVENTS[:, 0].tolist() and seq.events.y.tolist() == EVENTS[:, 1].tolist()
    assert seq.events.p.tolist() == EVENTS[:, 2].tolist()
    # 1 = present in EventVOT: frame 1 (flag 0) is the absent one
    assert seq.absent.tolist() == [0, 1, 0, 0]
    assert seq.boxes.tolist() == [[10, 20, 30, 40], [0, 0, 0, 0], [12, 22, 30, 40], [14, 24, 31.5, 40]]
    # equal slices of (99, 500]: ends at 99 + k*401//4 -> 199, 299, 399, 500
    assert seq.frame_times.tolist() == [199, 299, 399, 500]
    assert [len(seq.frame_events(k)) for k in range(4)] == [2, 2, 2, 2]
    assert seq.frame_events(3).t.tolist() == [400, 500]
    assert not seq.has_rgb


def test_equal_slices_cover_every_event_once():
    from spiketrack.data.events import EventArray

    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(1_000, 2_000_000, 5_000))
    ev = EventArray.from_arrays(t, t % 7, t % 5, t % 2)
    ft = equal_slice_times(ev, 499)
    assert len(ft) == 499 and ft[-1] == t[-1] and np.all(np.diff(ft) > 0)
    counts = np.diff(np.searchsorted(t, np.concatenate([[t[0] - 1], ft]), side="right"))
    assert counts.sum() == len(t)


def test_timestamps_file_overrides_slices(tmp_path):
    folder = make_eventvot_seq(tmp_path, "rec")
    write_rows(folder / "timestamps.txt", [150, 250, 350, 450])
    seq = open_eventvot_sequence(folder)
    assert seq.frame_times.tolist() == [150, 250, 350, 450] and seq.times_from_file


def test_header_and_column_order(tmp_path):
    reordered = EVENTS[:, [3, 0, 1, 2]]  # t, x, y, p
    folder = make_eventvot_seq(tmp_path, "rec", header="timestamp,x,y,polarity", events=reordered)
    seq = open_eventvot_sequence(folder)
    assert seq.events.t.tolist() == EVENTS[:, 3].tolist() and seq.events.x.tolist() == EVENTS[:, 0].tolist()


def test_decreasing_timestamps_are_refused_unless_sorting_is_asked(tmp_path):
    """Recorded data is never reordered silently (issue 31): refused, or sorted with a note when asked."""
    folder = make_eventvot_seq(tmp_path, "rec", events=EVENTS[::-1])
    with pytest.raises(DataFormatError, match=r"rec\.csv \[t\]: sequence rec: event timestamps decrease at 7 places, "
                                              r"first at event 1 \(t 400 after 500\).*--sort-events"):
        open_eventvot_sequence(folder)
    notes: list[str] = []
    seq = open_eventvot_sequence(folder, sort_events=True, notes=notes)
    assert seq.events.t.tolist() == EVENTS[:, 3].tolist()
    assert seq.events.x.tolist() == EVENTS[:, 0].tolist()  # rows move with their timestamps
    assert notes == ["sequence rec: sorted the events of rec.csv by time (timestamps decreased at 7 places, first at "
                     "event 1 (t 400 after 500))"]


@pytest.mark.parametrize("sep", [" ", "\t"])
def test_ground_truth_separators(tmp_path, sep):
    seq = open_eventvot_sequence(make_eventvot_seq(tmp_path, "rec", sep=sep))
    assert seq.boxes[3].tolist() == [14, 24, 31.5, 40]


def test_in_place_dataset_with_split_folders_and_split_file(tmp_path):
    root = tmp_path / "EventVOT"
    make_eventvot_seq(root / "Training Subset", "rec_a")
    make_eventvot_seq(root / "Testing Subset", "rec_b")
    make_eventvot_seq(root / "validating Subset", "rec_c")
    (tmp_path / "att.csv").write_text("rec_a,1" + ",0" * 13 + "\nrec_b" + ",0" * 7 + ",1" + ",0" * 6 + "\n")
    ds = open_public_dataset("eventvot", root, attributes=tmp_path / "att.csv")
    assert ds.names() == ["rec_a", "rec_b", "rec_c"]
    assert ds.splits == {"train": ["rec_a"], "test": ["rec_b"], "val": ["rec_c"]}
    assert ds.open("rec_a").attributes == ["CM"] and ds.open("rec_b").attributes == ["FM"]
    (tmp_path / "EventVOT_testing_subset.txt").write_text("rec_b\nrec_c\n")
    ds = open_public_dataset("eventvot", root, split_files={"test": tmp_path / "EventVOT_testing_subset.txt"})
    assert ds.names("test") == ["rec_b", "rec_c"]


@pytest.mark.parametrize(
    "change, file, message",
    [
        (lambda f: (f / "rec.csv").unlink(), "rec", "no raw events"),
        (lambda f: (f / "groundtruth.txt").unlink(), "groundtruth.txt", "file not found"),
        (lambda f: (f / "absent.txt").unlink(), "absent.txt", "visibility file not found"),
        (lambda f: (f / "img" / "0003.png").unlink(), "groundtruth.txt", "4 boxes but 3 frames"),
        (lambda f: (f / "img" / "0004.png").write_bytes(b""), "groundtruth.txt", "4 boxes but 5 frames"),
        (lambda f: (f / "groundtruth.txt").write_text("1,2,3,4\n1,2,3\n1,2,3,4\n1,2,3,4\n"), "groundtruth.txt",
         "line 2"),
        (lambda f: (f / "absent.txt").write_text("1\n1\n"), "absent.txt", "2 visibility flags but 4 boxes"),
        (lambda f: (f / "rec.csv").write_text("1,2,1,100\n1,2,x,200\n"), "rec.csv", "rec"),
        (lambda f: (f / "rec.csv").write_text("1,2,1,100\n1,2,1\n"), "rec.csv", "rec"),
        (lambda f: (f / "rec.csv").write_text("1,2,5,100\n"), "rec.csv", "polarity"),
        (lambda f: (f / "rec.csv").write_text("1280,2,1,100\n1,2,1,900\n"), "rec.csv", "outside the 1280x720"),
        (lambda f: (f / "rec.csv").write_text(""), "rec.csv", "no events"),
    ],
)
def test_bad_input_names_sequence_and_file(tmp_path, change, file, message):
    folder = make_eventvot_seq(tmp_path, "rec")
    change(folder)
    with pytest.raises(DataFormatError) as info:
        open_eventvot_sequence(folder)
    text = str(info.value)
    assert "rec" in text and file in text and message in text


def test_read_event_csv_space_separated(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("x y p t\n3 4 1 10\n5 6 0 20\n")
    ev = read_event_csv(p, "s")
    assert ev.t.tolist() == [10, 20] and ev.x.tolist() == [3, 5] and ev.p.tolist() == [1, 0]
