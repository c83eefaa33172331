"""tools/quickstart_seeds.py --reuse-teachers: a seed folder keeps its finished teacher and redoes the rest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool():  # noqa: ANN202 - the tool module
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location("quickstart_seeds", TOOLS / "quickstart_seeds.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


def _seed_folder(root: Path, teacher_done: bool) -> Path:
    work = root / "work-seed1"
    for stage in ("data", "teacher", "student", "track", "probe", "report"):
        if stage != "teacher" or teacher_done:
            (work / f"{stage}.done").parent.mkdir(parents=True, exist_ok=True)
            (work / f"{stage}.done").write_text("{}")
    for folder in ("teacher/checkpoints", "student/checkpoints"):
        (work / folder).mkdir(parents=True)
        (work / folder / "best.pt").write_bytes(b"x")
    return work


def test_reused_teacher_is_kept_and_every_later_stage_forgotten(tmp_path: Path) -> None:
    tool = _tool()
    assert tool.AFTER_TEACHER == ("student", "track", "probe", "report")
    work = _seed_folder(tmp_path, teacher_done=True)
    tool.forget_after_teacher(work)
    assert sorted(p.name for p in work.glob("*.done")) == ["data.done", "teacher.done"]
    assert (work / "teacher/checkpoints/best.pt").is_file() and not (work / "student").exists()


def test_without_a_finished_teacher_nothing_is_removed(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    tool = _tool()
    work = _seed_folder(tmp_path, teacher_done=False)
    tool.forget_after_teacher(work)
    assert len(list(work.glob("*.done"))) == 5 and (work / "student/checkpoints/best.pt").is_file()
    assert "no finished teacher stage" in capsys.readouterr().out
