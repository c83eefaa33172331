"""The quickstart pipeline end to end with tiny settings (the full one is marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spiketrack.cli import main
from spiketrack.data.dataset import SequenceDataset
from spiketrack.quickstart import STAGES, plan, quickstart
from spiketrack.errors import ConfigError

TINY = [
    "quickstart.train_sequences=2",
    "quickstart.test_sequences=1",
    "quickstart.frames=10:10",
    "quickstart.workers=1",
    "train.epochs=1",
    "train.steps_per_epoch=2",
    "train.batch_size=2",
    "data.num_workers=0",
]


def test_plan_routes_overrides(tmp_path: Path) -> None:
    p = plan(tmp_path, ["train.epochs=2", "student.train.lr=0.5", "teacher.model.variant=tiny",
                        "quickstart.test_sequences=3"])
    assert p.teacher.train.epochs == 2 and p.student.train.epochs == 2
    assert p.student.train.lr == 0.5 and p.teacher.train.lr != 0.5
    assert p.teacher.model.variant == "tiny" and p.student.model.variant == "quickstart"
    assert p.options.test_sequences == 3
    assert p.teacher.data.datasets[0].root == str(tmp_path / "synth")
    with pytest.raises(ConfigError, match="quickstart.nope"):
        plan(tmp_path, ["quickstart.nope=1"])


def test_quickstart_tiny_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, report_dir = tmp_path / "work", tmp_path / "report"
    overrides = [*TINY, f"quickstart.report_out={report_dir}"]
    rep = quickstart(work, overrides, progress=False)
    out = capsys.readouterr().out
    # every stage ran, printed its ordinary command, and left its marker
    for stage in STAGES:
        assert (work / f"{stage}.done").is_file()
    for command in ["spiketrack data synth", "spiketrack train", "spiketrack distill", "spiketrack track",
                    "spiketrack evaluate", "spiketrack report"]:
        assert f"$ {command}" in out
    # data: 2 + 1 sequences of 10 frames with split lists
    ds = SequenceDataset(work / "synth")
    assert ds.names("train") == ["train_0000", "train_0001"] and ds.names("test") == ["test_0000"]
    # checkpoints of both models, the student distilled from the teacher's
    teacher_done = json.loads((work / "teacher.done").read_text())
    student_done = json.loads((work / "student.done").read_text())
    assert Path(teacher_done["checkpoint"]).is_file() and Path(student_done["checkpoint"]).is_file()
    assert teacher_done["step"] == 2 and student_done["step"] == 2
    # results: one line per frame for each tracker; energy files for the two models
    for tracker in ("teacher", "student", "baseline"):
        lines = (work / "results" / tracker / "test_0000.txt").read_text().split()
        assert len(lines) == 10
        assert len((work / "results" / tracker / "test_0000_time.txt").read_text().split()) == 10
    for tracker in ("teacher", "student"):
        energy = json.loads((work / "results" / tracker / "test_0000_energy.json").read_text())
        assert energy["frames"] == 10 and len(energy["per_frame"]) == 10
        assert energy["energy_mj_sequence"] == pytest.approx(10 * energy["energy_mj_per_frame"])
    assert not (work / "results" / "baseline" / "test_0000_energy.json").exists()
    # report: files exist and agree with the returned dict; the baseline is listed apart
    saved = json.loads((report_dir / "report.json").read_text())
    assert saved == json.loads(json.dumps(rep))
    assert (report_dir / "report.md").is_file() and (report_dir / "accuracy_energy.png").is_file()
    assert "baseline" in saved["baselines"]
    rows = {row["tracker"]: row for row in saved["runs"]}
    assert rows["student"]["parameters"] > 0 and rows["teacher"]["parameters"] > 0
    md = (report_dir / "report.md").read_text()
    assert "teacher" in md and "student" in md
    # a second run skips every finished stage
    quickstart(work, overrides, progress=False)
    again = capsys.readouterr().out
    assert again.count("done already") == len(STAGES)


@pytest.mark.slow
def test_full_quickstart_cli(tmp_path: Path) -> None:
    """The real quickstart (what `make demo` runs), into a temporary work folder."""
    report_dir = tmp_path / "report"
    assert main(["quickstart", "--work", str(tmp_path / "work"), "--no-progress",
                 "--set", f"quickstart.report_out={report_dir}"]) == 0
    assert json.loads((report_dir / "report.json").read_text())["runs"]
