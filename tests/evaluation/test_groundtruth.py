"""Ground truth from native sequence files and EventVOT folders: both absent conventions agree."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.errors import DataFormatError
from spiketrack.evaluation.groundtruth import load_ground_truth

BOXES = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [0, 0, 0, 0], [16, 10, 20, 20]], float)
ABSENT_NATIVE = np.array([0, 0, 1, 0], np.uint8)  # native: 1 = not visible


def write_native(root, name="seq_a", attributes=("FM",), boxes=BOXES, absent=ABSENT_NATIVE):
    n = len(boxes)
    ev = EventArray.from_arrays(np.arange(n) * 1000 + 1, np.full(n, 5), np.full(n, 5), np.ones(n))
    write_sequence(
        root / f"{name}.h5", name=name, width=64, height=48, events=ev,
        frame_times=np.arange(1, n + 1) * 1000, boxes=boxes, absent=absent, attributes=list(attributes),
    )


def write_eventvot(root, name="seq_a", boxes=BOXES, present=1 - ABSENT_NATIVE):
    d = root / name
    d.mkdir(parents=True)
    (d / "groundtruth.txt").write_text("".join(",".join(str(int(v)) for v in b) + "\n" for b in boxes))
    if present is not None:
        (d / "absent.txt").write_text("".join(f"{int(v)}\n" for v in present))  # EventVOT: 1 = present


def test_native_and_eventvot_conventions_give_the_same_flags(tmp_path):
    write_native(tmp_path / "native")
    write_eventvot(tmp_path / "evot")
    (n,) = load_ground_truth(tmp_path / "native")
    (e,) = load_ground_truth(tmp_path / "evot")
    assert n.absent.tolist() == e.absent.tolist() == [False, False, True, False]
    np.testing.assert_array_equal(n.boxes, e.boxes)
    assert n.attributes == ["FM"] and e.attributes == []


def test_eventvot_without_absent_file_means_all_present(tmp_path):
    write_eventvot(tmp_path, present=None)
    (g,) = load_ground_truth(tmp_path)
    assert not g.absent.any()


def test_eventvot_absent_length_mismatch(tmp_path):
    write_eventvot(tmp_path, present=[1, 1, 1])
    with pytest.raises(DataFormatError, match="3 flags for 4"):
        load_ground_truth(tmp_path)


def test_splits(tmp_path):
    for name in ("a", "b", "c"):
        write_native(tmp_path / "native", name=name)
        write_eventvot(tmp_path / "evot", name=name)
    write_split(tmp_path / "native", "test", ["c", "a"])
    (tmp_path / "evot" / "test.txt").write_text("c\na\n")
    assert [g.name for g in load_ground_truth(tmp_path / "native", "test")] == ["c", "a"]
    assert [g.name for g in load_ground_truth(tmp_path / "evot", "test")] == ["c", "a"]
    assert [g.name for g in load_ground_truth(tmp_path / "evot")] == ["a", "b", "c"]
    with pytest.raises(DataFormatError, match="split 'val'"):
        load_ground_truth(tmp_path / "evot", "val")


def test_empty_dataset_folder(tmp_path):
    with pytest.raises(DataFormatError, match="no sequences"):
        load_ground_truth(tmp_path)
