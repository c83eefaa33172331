"""evaluate_trackers end to end on a tiny native dataset with hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.evaluation import evaluate_trackers
from spiketrack.evaluation.plots import legend_entries

PERFECT_SR = 100.0 * 20 / 21


def test_eventvot_overall_sequences_attributes_fps(small_eval):
    r = evaluate_trackers(small_eval["data"], [small_eval["good"], small_eval["shifted"]])
    good = r.trackers["good"]
    # seq_a: 3 of 4 frames count (frame 3 absent, still in the denominator)
    assert good.sequences["seq_a"].scores(r.protocol) == pytest.approx({"SR": PERFECT_SR * 0.75, "PR": 75, "NPR": 75})
    assert good.overall.scores() == pytest.approx({"SR": PERFECT_SR * 11 / 12, "PR": 275 / 3, "NPR": 275 / 3})
    assert good.attributes["FM"].PR == pytest.approx(87.5)
    assert good.attributes["SV"].PR == pytest.approx(100.0)
    assert good.fps == pytest.approx(100.0)
    shifted = r.trackers["shifted"]
    assert shifted.fps is None
    # only frame 1 (= GT) succeeds in each sequence
    assert shifted.overall.scores() == pytest.approx({"SR": PERFECT_SR / 4, "PR": 25.0, "NPR": 25.0})
    d = r.to_dict()
    assert d["trackers"]["good"]["sequences"]["seq_b"]["PR"] == pytest.approx(100.0)
    assert d["trackers"]["good"]["attributes"]["FM"]["sequences"] == 2
    assert len(d["trackers"]["good"]["curves"]["success"]) == 21
    assert len(d["trackers"]["good"]["curves"]["precision"]) == 51
    table = r.table()
    assert "91.7" in table and "FPS" in table and "100.0" in table
    assert "FM" in r.attribute_table() and "SV" in r.attribute_table()
    assert legend_entries(r, "precision")[0] == ("good", "good [91.7]")
    # per attribute: SV is seq_b alone, tracked perfectly by good and, after frame 0, 30 px off by shifted
    assert legend_entries(r, "success", "SV") == [("good", "good [95.2]"), ("shifted", "shifted [23.8]")]


def test_pytracking_counts_absent_frame_for_npr(small_eval):
    r = evaluate_trackers(small_eval["data"], [small_eval["good"]], protocol="pytracking")
    s = r.trackers["good"].sequences["seq_a"].scores(r.protocol)
    assert s == pytest.approx({"SR": PERFECT_SR * 0.75, "PR": 75.0, "NPR": 100.0})


def test_missing_result_file(small_eval):
    (small_eval["shifted"] / "seq_c.txt").unlink()
    with pytest.raises(DataFormatError, match="seq_c.txt.*--allow-missing"):
        evaluate_trackers(small_eval["data"], [small_eval["shifted"]])
    r = evaluate_trackers(small_eval["data"], [small_eval["good"], small_eval["shifted"]], allow_missing=True)
    sh = r.trackers["shifted"]
    assert sh.missing == ["seq_c"]
    assert sh.overall.PR == pytest.approx(50 / 3)  # 25, 25, 0: the missing sequence is not skipped
    assert any("seq_c" in n and "all-failed" in n for n in r.notes)


def test_wrong_line_count_per_protocol(small_eval):
    f = small_eval["good"] / "seq_b.txt"
    f.write_text("\n".join(f.read_text().splitlines()[:3]) + "\n")
    with pytest.raises(DataFormatError, match="3 lines for 4 frames"):
        evaluate_trackers(small_eval["data"], [small_eval["good"]])
    r = evaluate_trackers(small_eval["data"], [small_eval["good"]], protocol="pytracking")
    assert r.trackers["good"].sequences["seq_b"].scores(r.protocol)["PR"] == pytest.approx(75.0)
    assert any("seq_b.txt" in n and "padded" in n for n in r.notes)


def test_nan_and_negative_rows_per_protocol(small_eval):
    f = small_eval["good"] / "seq_c.txt"
    f.write_text("10,10,20,20\n10,10,20,20\nnan,nan,nan,nan\n10,10,-20,20\n")
    r = evaluate_trackers(small_eval["data"], [small_eval["good"]])
    assert r.trackers["good"].sequences["seq_c"].scores(r.protocol)["PR"] == pytest.approx(100.0)
    assert any("seq_c.txt" in n and "lines 3, 4" in n for n in r.notes)
    with pytest.raises(DataFormatError, match=r"seq_c.txt \[line 3\].*NaN"):
        evaluate_trackers(small_eval["data"], [small_eval["good"]], protocol="pytracking")
    f.write_text("10,10,20,20\n10,10,20,20\n10,10,20,20\n10,10,-20,20\n")
    with pytest.raises(DataFormatError, match=r"line 4.*negative"):
        evaluate_trackers(small_eval["data"], [small_eval["good"]], protocol="pytracking")


def test_names(small_eval):
    r = evaluate_trackers(small_eval["data"], [small_eval["good"]], names=["Ours"])
    assert list(r.trackers) == ["Ours"]
    with pytest.raises(ConfigError):
        evaluate_trackers(small_eval["data"], [small_eval["good"]], names=["a", "b"])
    with pytest.raises(ConfigError):
        evaluate_trackers(small_eval["data"], [small_eval["good"], small_eval["good"]])


def test_eventvot_folder_dataset_gives_same_numbers(small_eval, tmp_path):
    from spiketrack.evaluation.groundtruth import load_ground_truth

    evot = tmp_path / "evot"
    for g in load_ground_truth(small_eval["data"]):
        d = evot / g.name
        d.mkdir(parents=True)
        np.savetxt(d / "groundtruth.txt", g.boxes, fmt="%g", delimiter=",")
        np.savetxt(d / "absent.txt", (~g.absent).astype(int), fmt="%d")  # 1 = present
    a = evaluate_trackers(small_eval["data"], [small_eval["good"]]).trackers["good"].overall.scores()
    b = evaluate_trackers(evot, [small_eval["good"]]).trackers["good"].overall.scores()
    assert a == pytest.approx(b)
