"""AEDAT 4 decoding against numbers found once with an independent decoder.

Reference numbers for ``davis346_road/recording.aedat4`` were read with dv-processing 2.0.4 (iniVation's C++
library, ``dv.io.MonoCameraRecording``, in a scratch environment) and agree with the ``aedat`` package:
78,830 events (41,257 ON), first t = 1589163147368868 µs, last t = 1589163149728813 µs, x <= 345, y <= 259,
346 x 260; 59 APS frames, exposure of the first starts at 1589163147364965 and of the last at
1589163149684966, 500 µs each; pixel sums 6,949,660 (first) and 6,940,332 (last).
"""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.readers.aedat4 import gray_to_rgb, read_aedat4
from spiketrack.errors import DataFormatError


def test_real_davis346_recording(road_aedat4):
    rec = read_aedat4(road_aedat4)
    assert (rec.width, rec.height) == (346, 260)
    assert len(rec.events) == 78_830
    assert int(rec.events.p.sum()) == 41_257
    assert int(rec.events.t[0]) == 1_589_163_147_368_868
    assert int(rec.events.t[-1]) == 1_589_163_149_728_813
    assert int(rec.events.x.max()) == 345 and int(rec.events.y.max()) == 259
    assert np.all(np.diff(rec.events.t) >= 0)
    assert rec.num_frames == 59
    assert rec.frames.shape == (59, 260, 346) and rec.frames.dtype == np.uint8
    # exposure centre = exposure start (dv-processing) + 500 µs / 2
    assert int(rec.frame_times[0]) == 1_589_163_147_364_965 + 250
    assert int(rec.frame_times[-1]) == 1_589_163_149_684_966 + 250
    assert int(rec.frames[0].astype(np.int64).sum()) == 6_949_660
    assert int(rec.frames[-1].astype(np.int64).sum()) == 6_940_332


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        read_aedat4(tmp_path / "none.aedat4")
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(b"#!AEDAT4.0\r\n" + b"\x00" * 7)
    with pytest.raises(DataFormatError, match="bad.aedat4"):
        read_aedat4(bad)


def test_truncated_recording_is_an_error_not_a_crash(tmp_path, road_aedat4):
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(road_aedat4.read_bytes()[:200_000])
    try:
        rec = read_aedat4(cut)
    except DataFormatError as exc:
        assert "cut.aedat4" in str(exc)
    else:  # a decoder may stop cleanly at the last whole packet: then it returns a prefix
        assert 0 < len(rec.events) < 78_830


def test_gray_to_rgb_repeats_channels():
    g = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    rgb = gray_to_rgb(g)
    assert rgb.shape == (1, 2, 3, 3)
    assert np.array_equal(rgb[..., 0], g) and np.array_equal(rgb[..., 2], g)
