"""A small native dataset with two trackers' result folders, shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence

VISIBLE = np.array([[10, 10, 20, 20]] * 4, float)
WITH_ABSENT = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [0, 0, 0, 0], [16, 10, 20, 20]], float)


def _write(root, name, boxes, absent, attributes):
    n = len(boxes)
    ev = EventArray.from_arrays(np.arange(n) * 1000 + 1, np.full(n, 5), np.full(n, 5), np.ones(n))
    write_sequence(
        root / f"{name}.h5", name=name, width=64, height=48, events=ev,
        frame_times=np.arange(1, n + 1) * 1000, boxes=boxes, absent=np.asarray(absent, np.uint8),
        attributes=attributes,
    )


def _results(folder, name, boxes, times=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text("".join(",".join(f"{v:g}" for v in b) + "\n" for b in boxes))
    if times is not None:
        (folder / f"{name}_time.txt").write_text("".join(f"{t}\n" for t in times))


@pytest.fixture
def small_eval(tmp_path):
    """Dataset: seq_a (frame 3 absent, FM), seq_b (FM, SV), seq_c; trackers 'good' (timed) and 'shifted'."""
    data = tmp_path / "data"
    _write(data, "seq_a", WITH_ABSENT, [0, 0, 1, 0], ["FM"])
    _write(data, "seq_b", VISIBLE, [0, 0, 0, 0], ["FM", "SV"])
    _write(data, "seq_c", VISIBLE, [0, 0, 0, 0], [])
    good, shifted = tmp_path / "good", tmp_path / "shifted"
    pred_a = WITH_ABSENT.copy()
    pred_a[2] = pred_a[1]  # the tracker keeps its last box while the target is absent
    _results(good, "seq_a", pred_a, [0.01] * 4)
    for name in ("seq_b", "seq_c"):
        _results(good, name, VISIBLE, [0.01] * 4)
    for name, boxes in (("seq_a", pred_a), ("seq_b", VISIBLE), ("seq_c", VISIBLE)):
        p = boxes.copy()
        p[1:, 0] += 30  # 30 px off after frame 1: fails PR, IoU 0
        _results(shifted, name, p)
    return {"data": data, "good": good, "shifted": shifted}
