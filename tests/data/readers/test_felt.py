"""FELT layout (COESOT-like, absent.txt read as 1 = present)."""

from __future__ import annotations

import numpy as np

from spiketrack.data.readers.felt import open_felt_sequence


def test_felt_round_trip(tmp_path, davis_folder):
    boxes = np.tile([[1, 2, 3, 4]], (59, 1)).astype(float)
    boxes[58] = 0
    present = [1] * 58 + [0]
    folder = davis_folder(tmp_path, "dvSave-2022_10_11_19_19_31", "{seq}.aedat4", "groundtruth.txt", boxes,
                          absent_file=("absent.txt", present), extra_dirs=("{seq}_aps",))
    seq = open_felt_sequence(folder)
    assert seq.num_frames == 59 and seq.absent.tolist() == [0] * 58 + [1]
    assert seq.source.startswith("felt:")
