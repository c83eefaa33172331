"""FE108 layout on a copy of the real DAVIS346 recording: events.aedat4 + img/ + groundtruth_rect.txt."""

from __future__ import annotations

import numpy as np

from spiketrack.data.readers.aedat4 import read_aedat4
from spiketrack.data.readers.fe108 import open_fe108_sequence


def test_fe108_round_trip(tmp_path, davis_folder, road_aedat4):
    boxes = np.tile([[10, 20, 30, 40]], (59, 1)).astype(float)
    boxes[5] = 0  # FE108 has no visibility file: an empty box marks an absent target
    boxes[:, 0] += np.arange(59) * 0.5
    folder = davis_folder(tmp_path, "airplane_mul222", "events.aedat4", "groundtruth_rect.txt", boxes,
                          sep=" ", extra_dirs=("img",))
    seq = open_fe108_sequence(folder)
    rec = read_aedat4(road_aedat4)
    assert (seq.width, seq.height, seq.num_frames) == (346, 260, 59)
    assert np.array_equal(seq.events.t, rec.events.t) and np.array_equal(seq.events.p, rec.events.p)
    assert np.array_equal(seq.frame_times, rec.frame_times)
    assert seq.absent.sum() == 1 and seq.absent[5] == 1
    assert np.allclose(seq.boxes[6], [13, 20, 30, 40])
    assert seq.has_rgb and np.array_equal(seq.rgb(7)[..., 2], rec.frames[7])
    # frame k's events: frame_times[k-1] < t <= frame_times[k]
    k = 10
    t0, t1 = int(rec.frame_times[k - 1]), int(rec.frame_times[k])
    want = np.count_nonzero((rec.events.t > t0) & (rec.events.t <= t1))
    assert len(seq.frame_events(k)) == want > 0
