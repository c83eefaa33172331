"""COESOT layout: <seq>_aps/, <seq>_dvs/, <seq>.aedat4, groundtruth.txt, absent.txt (1 = present), start_end_index.txt."""

from __future__ import annotations

import numpy as np

from spiketrack.data.readers.aedat4 import read_aedat4
from spiketrack.data.readers.coesot import open_coesot_sequence

from .conftest import write_rows


def test_coesot_round_trip_with_start_end_index(tmp_path, davis_folder, road_aedat4):
    boxes = np.tile([[100, 100, 40, 30]], (50, 1)).astype(float)
    boxes[[3, 4]] = 0
    present = [1] * 50
    present[3] = present[4] = 0
    folder = davis_folder(tmp_path, "dvSave-2021_07_30_11_04_12", "{seq}.aedat4", "groundtruth.txt", boxes,
                          absent_file=("absent.txt", present), extra_dirs=("{seq}_aps", "{seq}_dvs"))
    write_rows(folder / "start_end_index.txt", [[5, 54]])
    seq = open_coesot_sequence(folder)
    rec = read_aedat4(road_aedat4)
    assert seq.num_frames == 50
    assert np.array_equal(seq.frame_times, rec.frame_times[5:55])
    assert seq.absent.tolist() == [0, 0, 0, 1, 1] + [0] * 45
    assert np.array_equal(seq.rgb(0)[..., 0], rec.frames[5])
    assert len(seq.events) == 78_830
