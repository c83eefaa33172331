"""`spiketrack data convert`: converted files equal the in-place readers; failures are reported, not fatal."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.cli import main
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.h5seq import open_sequence, validate_sequence
from spiketrack.data.readers import open_public_dataset
from spiketrack.data.readers.convert import convert_dataset

from .test_eventvot import make_eventvot_seq


def assert_same(in_place, converted):
    assert (converted.name, converted.width, converted.height) == (in_place.name, in_place.width, in_place.height)
    a, b = in_place.events, converted.all_events()
    for key in ("t", "x", "y", "p"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert np.array_equal(in_place.frame_times, converted.frame_times)
    assert np.array_equal(in_place.boxes, converted.boxes)
    assert np.array_equal(in_place.absent, converted.absent)
    assert converted.attributes == in_place.attributes
    for k in range(in_place.num_frames):
        assert np.array_equal(in_place.frame_events(k).t, converted.frame_events(k).t)


def test_eventvot_cli_round_trip(tmp_path, capsys):
    root = tmp_path / "EventVOT"
    make_eventvot_seq(root / "train", "rec_a")
    make_eventvot_seq(root / "test", "rec_b")
    make_eventvot_seq(root / "test", "rec_c")
    (tmp_path / "EventVOT_testing_subset.txt").write_text("rec_c\n")
    (tmp_path / "att.csv").write_text("rec_a,1" + ",0" * 13 + "\n")
    out = tmp_path / "out"
    rc = main(["data", "convert", "--format", "eventvot", "--src", str(root), "--out", str(out),
               "--split-file", str(tmp_path / "EventVOT_testing_subset.txt"), "--attributes", str(tmp_path / "att.csv")])
    assert rc == 0
    assert "converted 3 sequences" in capsys.readouterr().out
    native = SequenceDataset(out)
    assert native.names() == ["rec_a", "rec_b", "rec_c"]
    assert native.names("train") == ["rec_a"] and native.names("test") == ["rec_c"]
    public = open_public_dataset("eventvot", root, attributes=tmp_path / "att.csv")
    for name in native.names():
        assert validate_sequence(native.path(name)) == []
        with public.open(name) as a, native.open(name) as b:
            assert_same(a, b)
    with native.open("rec_a") as seq:
        assert seq.attributes == ["CM"] and seq.absent.tolist() == [0, 1, 0, 0]


def test_bad_sequences_are_reported_and_skipped(tmp_path, capsys):
    root = tmp_path / "src"
    make_eventvot_seq(root, "good")
    (make_eventvot_seq(root, "no_events") / "no_events.csv").unlink()
    bad = make_eventvot_seq(root, "ragged")
    (bad / "groundtruth.txt").write_text("1,2,3,4\n1,2,3\n1,2,3,4\n1,2,3,4\n")
    (tmp_path / "test.txt").write_text("good\nragged\nmissing_seq\n")
    out = tmp_path / "out"
    rc = main(["data", "convert", "--format", "eventvot", "--src", str(root), "--out", str(out),
               "--split-file", f"test={tmp_path / 'test.txt'}"])
    printed = capsys.readouterr().out
    assert rc == 1
    assert "converted 1 sequences" in printed and "FAILED 3 sequences" in printed
    assert "no_events: " in printed and "no raw events" in printed
    assert "ragged: " in printed and "groundtruth.txt [line 2]" in printed
    assert "missing_seq: listed in split 'test'" in printed
    assert sorted(p.name for p in out.iterdir()) == ["good.h5", "test.txt"]  # nothing half-written
    assert (out / "test.txt").read_text() == "good\n"


def test_no_sequences_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["data", "convert", "--format", "coesot", "--src", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "out")]) == 2


def test_skip_existing(tmp_path):
    root = tmp_path / "src"
    make_eventvot_seq(root, "a")
    out = tmp_path / "out"
    assert convert_dataset("eventvot", root, out, progress=False).converted == ["a"]
    summary = convert_dataset("eventvot", root, out, skip_existing=True, progress=False)
    assert summary.skipped == ["a"] and summary.converted == []


def test_full_disk_midway_stops_with_one_line(tmp_path, capsys, monkeypatch):
    """A write failure (ENOSPC) is not a bad sequence: the run stops, naming the file, exit code 2 (issue 16)."""
    import errno
    import os
    from pathlib import Path

    root = tmp_path / "src"
    for name in ("a", "b", "c"):
        make_eventvot_seq(root, name)
    real_write = Path.write_bytes

    def write_bytes(self, data):  # the sequence writer's one write of its temporary file (small sequences)
        if self.name == f".b.h5.tmp-{os.getpid()}":
            real_write(self, b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    out = tmp_path / "out"
    rc = main(["data", "convert", "--format", "eventvot", "--src", str(root), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "" and captured.err.count("\n") == 1, captured
    assert str(out / "b.h5") in captured.err and "no space left" in captured.err, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.h5"]  # no temporary file, no split list, c not started
    assert validate_sequence(out / "a.h5") == []


LAYOUTS = {
    "fe108": ("events.aedat4", "groundtruth_rect.txt", None),
    "visevent": ("{seq}.aedat4", "groundtruth.txt", ("absent_label.txt", "present")),
    "coesot": ("{seq}.aedat4", "groundtruth.txt", ("absent.txt", "present")),
    "felt": ("{seq}.aedat4", "groundtruth.txt", ("absent.txt", "present")),
}


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_davis_formats_convert_identically(tmp_path, davis_folder, fmt):
    events_name, gt_name, absent = LAYOUTS[fmt]
    boxes = np.tile([[20, 30, 40, 50]], (59, 1)).astype(float)
    boxes[[2, 40]] = 0
    absent_file = None
    if absent is not None:
        flags = [1] * 59
        flags[2] = flags[40] = 0
        absent_file = (absent[0], flags)
    davis_folder(tmp_path / "src" / "Testing Subset", "seq_1", events_name, gt_name, boxes, absent_file=absent_file)
    out = tmp_path / "out"
    summary = convert_dataset(fmt, tmp_path / "src", out, progress=False)
    assert summary.ok and summary.converted == ["seq_1"] and summary.events == 78_830
    assert (out / "test.txt").read_text() == "seq_1\n"
    with open_public_dataset(fmt, tmp_path / "src").open("seq_1") as a, open_sequence(out / "seq_1.h5") as b:
        assert_same(a, b)
        assert np.flatnonzero(b.absent).tolist() == [2, 40]
        assert b.has_rgb and np.array_equal(b.rgb(17), a.rgb(17))
        assert b.rgb(17).shape == (260, 346, 3)


def test_no_rgb_option(tmp_path, davis_folder):
    boxes = np.tile([[20, 30, 40, 50]], (59, 1)).astype(float)
    davis_folder(tmp_path / "src", "airplane", "events.aedat4", "groundtruth_rect.txt", boxes)
    out = tmp_path / "out"
    assert main(["data", "convert", "--format", "fe108", "--src", str(tmp_path / "src"), "--out", str(out),
                 "--no-rgb"]) == 0
    with open_sequence(out / "airplane.h5") as seq:
        assert not seq.has_rgb and seq.num_frames == 59
