"""The probe checks its arguments before it tracks anything (issue 31): protocol, attributes, device, checkpoint,
and that ``--real-results`` holds this tracker's finished results (same run identity); a refused probe leaves no
folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from tracking_helpers import moving_box_sequence, write_dataset

from spiketrack.cli import main


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    write_dataset(root, [moving_box_sequence("a", frames=6), moving_box_sequence("b", frames=6, start=(60, 30))])
    return root


def _probe(root: Path, out: Path, *extra) -> list[str]:  # noqa: ANN002
    return ["probe", "template", "--config", str(Path(__file__).parents[2] / "configs" / "quickstart_student.yaml"),
            "--tracker", "baseline", "--dataset", str(root), "--out", str(out), "--quiet", *map(str, extra)]


@pytest.fixture
def real(tmp_path: Path) -> Path:
    """Finished baseline results of the dataset's test split (``spiketrack track``)."""
    root = _dataset(tmp_path)
    assert main(["track", "--tracker", "baseline", "--dataset", str(root), "--out", str(tmp_path / "real"),
                 "--config", str(Path(__file__).parents[2] / "configs" / "quickstart_student.yaml"), "--quiet"]) == 0
    return tmp_path / "real"


@pytest.mark.parametrize("extra, expected", [
    (("--protocol", "matlab"), "--protocol matlab: expected one of ['eventvot', 'pytracking']"),
    (("--attribute", "ZZ"), "--attribute ZZ: no sequence of"),
    (("--device", "tpu"), "--device tpu: expected cpu or cuda"),
    (("--real-results", "nowhere"), "--real-results: results folder not found"),
    (("--modes", "zeroed,upside"), "modes must be among"),
    (("--workers", "0"), "--workers must be >= 1"),
])
def test_bad_argument_is_refused_before_tracking(tmp_path, capsys, monkeypatch, extra, expected):
    from spiketrack.tracking import runner

    root = _dataset(tmp_path)
    monkeypatch.setattr(runner, "run_one", lambda *a, **k: pytest.fail("tracked before checking"))
    out = tmp_path / "probe"
    rc = main(_probe(root, out, *extra))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not out.exists()


def test_real_results_of_another_tracker_or_settings_are_refused(tmp_path, capsys, real):
    root = tmp_path / "ds"
    out = tmp_path / "probe"
    rc = main(_probe(root, out, "--real-results", real, "--set", "tracking.empty_score_decay=0.3"))
    err = capsys.readouterr().err
    assert rc == 2 and f"--real-results {real}: made by another tracker or with other settings" in err, err
    assert "tracking.empty_score_decay: there 0.5, here 0.3" in err and not out.exists()
    (real / "track_run.json").unlink()
    rc = main(_probe(root, out, "--real-results", real))
    err = capsys.readouterr().err
    assert rc == 2 and "no record of the tracker that made it" in err and not out.exists(), err


def test_real_results_missing_a_sequence_are_refused(tmp_path, capsys, real):
    (real / "b.txt").unlink()
    out = tmp_path / "probe"
    rc = main(_probe(tmp_path / "ds", out, "--real-results", real))
    err = capsys.readouterr().err
    assert rc == 2 and "[b.txt]: --real-results: 1 of 2 sequences of the split have no finished result" in err, err
    assert not out.exists()


def test_matching_real_results_are_used(tmp_path, capsys, real):
    out = tmp_path / "probe"
    assert main(_probe(tmp_path / "ds", out, "--real-results", real)) == 0
    assert (out / "probe.json").is_file() and not (out / "real").exists()  # the real mode was not tracked again
