"""VisEvent layout: both visibility files, with opposite meanings (absent.txt 1 = absent, absent_label.txt 1 = present)."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.readers.visevent import open_visevent_sequence
from spiketrack.errors import DataFormatError


def _boxes():
    boxes = np.tile([[50, 60, 20, 10]], (59, 1)).astype(float)
    boxes[[0, 30, 58]] = 0
    return boxes


def test_absent_txt_one_means_absent(tmp_path, davis_folder):
    flags = [0] * 59
    for k in (0, 30, 58):
        flags[k] = 1
    folder = davis_folder(tmp_path, "00141_tank_outdoor2", "{seq}.aedat4", "groundtruth.txt", _boxes(),
                          absent_file=("absent.txt", flags), extra_dirs=("vis_imgs", "event_imgs"))
    seq = open_visevent_sequence(folder)
    assert np.flatnonzero(seq.absent).tolist() == [0, 30, 58]


def test_absent_label_txt_one_means_present(tmp_path, davis_folder):
    flags = [1] * 59
    for k in (0, 30, 58):
        flags[k] = 0
    folder = davis_folder(tmp_path, "00141_tank_outdoor2", "{seq}.aedat4", "groundtruth.txt", _boxes(),
                          absent_file=("absent_label.txt", flags), sep="\t")
    seq = open_visevent_sequence(folder)
    assert np.flatnonzero(seq.absent).tolist() == [0, 30, 58]
    assert seq.boxes[1].tolist() == [50, 60, 20, 10]


def test_absent_label_read_with_the_wrong_meaning_is_refused(tmp_path, davis_folder):
    flags = [1] * 59
    for k in (0, 30, 58):
        flags[k] = 0
    folder = davis_folder(tmp_path, "seq", "{seq}.aedat4", "groundtruth.txt", _boxes(),
                          absent_file=("absent_label.txt", flags))
    with pytest.raises(DataFormatError, match="absent_label.txt.*looks inverted"):
        open_visevent_sequence(folder, absent_means="absent")
