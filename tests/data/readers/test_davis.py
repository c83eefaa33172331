"""Shared DAVIS logic: frame alignment, start_end_index.txt, missing files (with a pluggable decoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spiketrack.data.readers import coesot, fe108
from spiketrack.data.readers.davis import open_davis_sequence
from spiketrack.errors import DataFormatError

from .conftest import fake_recording, write_rows


def make_seq(tmp_path: Path, n_frames: int, boxes, present=None, start_end=None) -> Path:
    folder = tmp_path / "dvSave-2021_09_01_06_59_10"
    folder.mkdir()
    (folder / f"{folder.name}.aedat4").write_text(str(n_frames))  # read by the fake decoder only
    write_rows(folder / "groundtruth.txt", boxes)
    if present is not None:
        write_rows(folder / "absent.txt", present)
    if start_end is not None:
        (folder / "start_end_index.txt").write_text(start_end)
    return folder


BOXES = [[1, 1, 4, 4], [2, 2, 4, 4], [0, 0, 0, 0]]


def test_all_frames_annotated(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 3, BOXES, present=[1, 1, 0])
    seq = open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)
    assert seq.frame_times.tolist() == [10_000, 20_000, 30_000]
    assert seq.absent.tolist() == [0, 0, 1]
    assert seq.frame_events(1).t.tolist() == [11_000, 15_000, 20_000]
    assert seq.frame_events(0).t.tolist() == [1_000, 5_000, 10_000]  # window (0, 10000]
    rec = fake_recording(folder, 3)
    assert np.array_equal(seq.rgb(2)[..., 1], rec.frames[2]) and seq.rgb(2).shape == (10, 20, 3)


@pytest.mark.parametrize("text", ["2,4", "2 5", "2\n5\n"])
def test_start_end_index_selects_annotated_frames(tmp_path, fake_decoder, text):
    folder = make_seq(tmp_path, 8, BOXES, present=[1, 1, 0], start_end=text)
    seq = open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)
    assert seq.frame_times.tolist() == [30_000, 40_000, 50_000]
    assert np.array_equal(seq.rgb(0)[..., 0], fake_recording(folder, 8).frames[2])


def test_start_end_index_that_does_not_fit(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 8, BOXES, present=[1, 1, 0], start_end="2,7")
    with pytest.raises(DataFormatError, match="start_end_index.txt.*do not match 3 boxes"):
        open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)


@pytest.mark.parametrize("n_frames", [2, 5])
def test_more_or_fewer_boxes_than_frames(tmp_path, fake_decoder, n_frames):
    folder = make_seq(tmp_path, n_frames, BOXES, present=[1, 1, 0])
    with pytest.raises(DataFormatError) as info:
        open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)
    assert f"{n_frames} APS frames but 3 boxes" in str(info.value) and "dvSave-2021_09_01_06_59_10" in str(info.value)


def test_folder_without_events(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 3, BOXES, present=[1, 1, 0])
    (folder / f"{folder.name}.aedat4").unlink()
    with pytest.raises(DataFormatError, match="dvSave-2021_09_01_06_59_10: no event recording"):
        open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)


def test_recording_beside_the_folder_is_found(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 3, BOXES, present=[1, 1, 0])
    (folder / f"{folder.name}.aedat4").rename(tmp_path / f"{folder.name}.aedat4")
    assert open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder).num_frames == 3


def test_missing_ground_truth(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 3, BOXES)
    (folder / "groundtruth.txt").unlink()
    with pytest.raises(DataFormatError, match="groundtruth.txt.*ground truth not found"):
        open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)


def test_fe108_without_flags_uses_empty_boxes(tmp_path, fake_decoder):
    folder = tmp_path / "airplane"
    folder.mkdir()
    (folder / "events.aedat4").write_text("3")
    write_rows(folder / "groundtruth_rect.txt", BOXES)
    seq = open_davis_sequence(folder, fe108.LAYOUT, decoder=fake_decoder)
    assert seq.absent.tolist() == [0, 0, 1]


def test_absent_means_override(tmp_path, fake_decoder):
    folder = make_seq(tmp_path, 3, BOXES, present=[0, 0, 1])  # a copy stored as 1 = absent
    with pytest.raises(DataFormatError, match="looks inverted"):
        open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder)
    seq = open_davis_sequence(folder, coesot.LAYOUT, decoder=fake_decoder, absent_means="absent")
    assert seq.absent.tolist() == [0, 0, 1]
