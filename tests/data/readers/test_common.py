"""Ground-truth parsing and absent-flag conventions."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.dataset import read_split
from spiketrack.data.readers.common import (
    AbsentConvention,
    load_annotations,
    read_boxes,
    to_absent,
)
from spiketrack.errors import DataFormatError

BOXES = [[1, 2, 3, 4], [5.5, 6, 7, 8], [0, 0, 0, 0]]


@pytest.mark.parametrize("sep", [",", " ", "\t", ", ", "  \t"])
def test_separators_give_the_same_boxes(tmp_path, sep):
    path = tmp_path / "groundtruth.txt"
    path.write_text("\n".join(sep.join(str(v) for v in row) for row in BOXES) + "\n\n")
    boxes = read_boxes(path, "seq")
    assert boxes.dtype == np.float32
    assert np.array_equal(boxes, np.asarray(BOXES, np.float32))


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("1,2,3,4\n5,6,7\n", "line 2", "expected 4 values"),
        ("1,2,3,4\n5,6,seven,8\n", "line 2", "non-numeric"),
        ("1,2,3,4,5\n", "line 1", "expected 4 values"),
        ("1,2,-3,4\n", "line 1", "negative"),
        ("1,2,nan,4\n", "line 1", "non-finite"),
        ("\n\n", "file", "no rows"),
    ],
)
def test_bad_ground_truth_names_sequence_file_and_line(tmp_path, text, where, what):
    path = tmp_path / "groundtruth.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError) as info:
        read_boxes(path, "myseq")
    msg = str(info.value)
    assert "groundtruth.txt" in msg and "myseq" in msg and where in msg and what in msg


def test_missing_ground_truth(tmp_path):
    with pytest.raises(DataFormatError, match="myseq: file not found"):
        read_boxes(tmp_path / "groundtruth.txt", "myseq")


def test_conventions_are_opposite():
    flags = np.array([1, 0, 1], np.uint8)
    assert to_absent(flags, AbsentConvention.ONE_MEANS_ABSENT).tolist() == [1, 0, 1]
    assert to_absent(flags, AbsentConvention.ONE_MEANS_PRESENT).tolist() == [0, 1, 0]


def _write(tmp_path, boxes, flags):
    gt, ab = tmp_path / "groundtruth.txt", tmp_path / "absent.txt"
    gt.write_text("".join(",".join(str(v) for v in b) + "\n" for b in boxes))
    ab.write_text("".join(f"{f}\n" for f in flags))
    return gt, ab


def test_one_means_present(tmp_path):
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [0, 0, 0, 0], [2, 2, 5, 5]], [1, 0, 1])
    ann = load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_PRESENT)
    assert ann.absent.tolist() == [0, 1, 0]


def test_one_means_absent(tmp_path):
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [0, 0, 0, 0], [2, 2, 5, 5]], [0, 1, 0])
    ann = load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_ABSENT)
    assert ann.absent.tolist() == [0, 1, 0]


def test_absent_frame_keeps_no_box(tmp_path):
    """A frame flagged absent whose row still holds a box gets 0,0,0,0 (docs/architecture.md, "Sequence files")."""
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [3, 3, 5, 5], [2, 2, 5, 5]], [1, 0, 1])
    ann = load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_PRESENT)
    assert ann.absent.tolist() == [0, 1, 0]
    assert ann.boxes[1].tolist() == [0, 0, 0, 0] and ann.boxes[2].tolist() == [2, 2, 5, 5]


def test_inverted_file_is_refused(tmp_path):
    """Reading a 1 = present file as 1 = absent would drop every visible frame: refused with a hint."""
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [0, 0, 0, 0], [2, 2, 5, 5]], [1, 0, 1])
    with pytest.raises(DataFormatError, match="looks inverted"):
        load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_ABSENT)


def test_flag_count_must_match_boxes(tmp_path):
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [2, 2, 5, 5]], [1, 1, 1])
    with pytest.raises(DataFormatError, match="3 visibility flags but 2 boxes"):
        load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_PRESENT)


def test_flags_must_be_binary(tmp_path):
    gt, ab = _write(tmp_path, [[1, 1, 5, 5], [2, 2, 5, 5]], [1, 2])
    with pytest.raises(DataFormatError, match="line 2.*expected 0 or 1"):
        load_annotations("s", gt, ab, AbsentConvention.ONE_MEANS_PRESENT)


def test_without_flags_empty_boxes_are_absent(tmp_path):
    gt, _ = _write(tmp_path, [[1, 1, 5, 5], [0, 0, 0, 0], [4, 4, 0, 3]], [])
    ann = load_annotations("s", gt, None, None)
    assert ann.absent.tolist() == [0, 1, 1]
    assert ann.boxes[2].tolist() == [0, 0, 0, 0]


def test_name_list(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text("a\n\n b/ \n# comment\nc # trailing\n")
    assert read_split(p) == ["a", "b", "c"]
