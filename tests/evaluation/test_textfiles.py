"""Result/time/flag text readers: separators, and errors naming file and line."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.errors import DataFormatError
from spiketrack.evaluation.textfiles import read_boxes, read_flags, read_times


def test_separators_ints_floats_nan(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("1,2,3,4\n5 6 7 8\n9\t10\t11.5\t12\n1, 2,\t3 ,4\nnan,nan,nan,nan\n\n\n")
    b = read_boxes(f)
    assert b.shape == (5, 4)
    np.testing.assert_array_equal(b[:4], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11.5, 12], [1, 2, 3, 4]])
    assert np.isnan(b[4]).all()


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("1,2,3,4\n1,2,x,4\n", "line 2", "not a number: 'x'"),
        ("1,2,3,4\n1,2,3\n", "line 2", "3 fields"),
        ("1,2,3,4\n\n1,2,3,4\n", "line 2", "empty line"),
        ("1,2,3,4\n1,2,3,4,5\n1,2,3\n", "line 2", "5 fields"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, text, line, words):
    f = tmp_path / "seq.txt"
    f.write_text(text)
    with pytest.raises(DataFormatError) as exc:
        read_boxes(f)
    assert exc.value.field == line and words in str(exc.value) and str(f) in str(exc.value)


def test_times_and_flags(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text("0.01\n0.02\n")
    assert read_times(t).tolist() == [0.01, 0.02]
    t.write_text("0.01\n-1\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_times(t)
    a = tmp_path / "absent.txt"
    a.write_text("1\n0\n1\n")
    assert read_flags(a).tolist() == [True, False, True]
    a.write_text("1\n2\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_flags(a)


def test_leading_blank_line_and_comment_like_rows_are_errors(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n1,2,3,4\n")
    with pytest.raises(DataFormatError, match="empty line"):
        read_boxes(f)
    f.write_text("1,2,3,4\n# 1,2,3,4\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_boxes(f)
    f.write_text("")
    assert read_boxes(f).shape == (0, 4)
