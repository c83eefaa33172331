"""`spiketrack evaluate` in-process: table, JSON schema, plots, errors without tracebacks."""

from __future__ import annotations

import json

import pytest

from spiketrack.cli import main


def test_evaluate_command_json_and_plots(small_eval, tmp_path, capsys):
    out = tmp_path / "eval.json"
    plots = tmp_path / "plots"
    rc = main([
        "evaluate", "--dataset", str(small_eval["data"]), "--results", str(small_eval["good"]),
        "--results", str(small_eval["shifted"]), "--names", "A", "B", "--json", str(out), "--plots", str(plots),
    ])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Tracker" in text and "91.7" in text and "SR/PR/NPR" in text
    d = json.loads(out.read_text())
    assert d["protocol"] == "eventvot"
    for name in ("A", "B"):
        t = d["trackers"][name]
        assert {"SR", "PR", "NPR", "sequences", "curves", "attributes"} <= set(t)
        assert set(t["sequences"]) == {"seq_a", "seq_b", "seq_c"}
        assert set(t["attributes"]) == {"FM", "SV"}
        assert {"SR", "PR", "NPR"} <= set(t["attributes"]["FM"]) and {"SR", "PR", "NPR"} <= set(t["sequences"]["seq_a"])
    assert d["trackers"]["A"]["PR"] == pytest.approx(275 / 3)
    for kind in ("success", "precision", "norm_precision", "success_FM", "success_SV"):  # one per attribute code
        assert (plots / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in plots.iterdir()) == [
        "norm_precision.png", "precision.png", "success.png", "success_FM.png", "success_SV.png"]


def test_evaluate_command_missing_file_is_a_clean_error(small_eval, capsys):
    (small_eval["good"] / "seq_b.txt").unlink()
    rc = main(["evaluate", "--dataset", str(small_eval["data"]), "--results", str(small_eval["good"])])
    err = capsys.readouterr().err
    assert rc == 2 and "seq_b.txt" in err and "Traceback" not in err
    rc = main([
        "evaluate", "--dataset", str(small_eval["data"]), "--results", str(small_eval["good"]), "--allow-missing",
        "--protocol", "pytracking",
    ])
    captured = capsys.readouterr()
    assert rc == 0 and "all-failed" in captured.err and "pytracking" in captured.out


def test_results_may_be_listed_after_one_option(small_eval, capsys):
    rc = main([
        "evaluate", "--dataset", str(small_eval["data"]),
        "--results", str(small_eval["good"]), str(small_eval["shifted"]),
    ])
    out = capsys.readouterr().out
    assert rc == 0 and "good" in out and "shifted" in out
