from pathlib import Path

import numpy as np
import pytest
from eventgen import make_events

from spiketrack.cli import main
from spiketrack.data.dataset import SequenceDataset, read_split, write_split
from spiketrack.data.h5seq import write_sequence
from spiketrack.errors import DataFormatError


def _seq(root: Path, name: str) -> None:
    write_sequence(root / f"{name}.h5", name=name, width=20, height=10, events=make_events(100, 20, 10, 3000),
                   frame_times=np.array([1000, 2000, 3000]), boxes=np.ones((3, 4), np.float32),
                   absent=np.zeros(3, np.uint8))


def test_splits_and_listing(tmp_path: Path) -> None:
    for n in ["a", "b", "c"]:
        _seq(tmp_path, n)
    write_split(tmp_path, "train", ["a", "b"])
    (tmp_path / "test.txt").write_text("# held out\nc\n\n")
    ds = SequenceDataset(tmp_path)
    assert ds.names() == ["a", "b", "c"]
    assert ds.names("train") == ["a", "b"] and ds.names("test") == ["c"]
    with ds.open("b") as seq:
        assert seq.name == "b" and seq.num_frames == 3
    assert read_split(tmp_path / "train.txt") == ["a", "b"]


def test_missing_listed_file(tmp_path: Path) -> None:
    _seq(tmp_path, "a")
    write_split(tmp_path, "test", ["a", "zz"])
    with pytest.raises(DataFormatError, match=r"test\.txt \[zz\]"):
        SequenceDataset(tmp_path).names("test")


def test_validate_and_info_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seq(tmp_path, "a")
    write_split(tmp_path, "test", ["a"])
    assert main(["data", "validate", str(tmp_path)]) == 0
    assert "1 sequence files checked, 0 violations" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "a.h5"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"frames": 3' in out and '"events": 100' in out
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    write_split(tmp_path, "train", ["missing"])
    assert main(["data", "validate", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "broken.h5 [file]" in captured.err and "train.txt [line 1]" in captured.err
