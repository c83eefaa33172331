"""Bad input refused before any work or file write (issues 30 and 31): boxes, empty folders, split lines outside the
dataset, memory beyond the machine, run folders of failed runs, decreasing timestamps, the probe's arguments.

Each test runs the CLI (``spiketrack.cli.main``) or the library on bad input built in tmp_path and checks the exit
code 2 (``data validate``: 1 for a violation), one line naming the file and field or key, and what is left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "tracking"))
sys.path.insert(0, str(Path(__file__).parent / "train"))

from tracking_helpers import moving_box_sequence, write_dataset  # noqa: E402
from trainsynth import make_dataset, tiny_config  # noqa: E402

from spiketrack.cli import main  # noqa: E402
from spiketrack.config import load_config  # noqa: E402
from spiketrack.data.h5seq import save_sequence, validate_sequence  # noqa: E402
from spiketrack.errors import ConfigError, DataFormatError  # noqa: E402


def _run(argv: list, capsys) -> tuple[int, list[str], str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _dataset(tmp_path: Path, boxes: dict[int, list[float]] | None = None, absent0: bool = False) -> tuple[Path, Path]:
    """Two sequences (160x120, 8 frames) in train and test lists; ``boxes`` replaces rows of seq0's boxes."""
    root = tmp_path / "ds"
    write_dataset(root, [moving_box_sequence("seq0", frames=8), moving_box_sequence("seq1", frames=8)])
    (root / "train.txt").write_text("seq0\nseq1\n")
    path = root / "seq0.h5"
    with h5py.File(path, "r+") as h5:
        for k, row in (boxes or {}).items():
            h5["boxes"][k] = row
        if absent0:
            h5["absent"][0] = 1
            h5["boxes"][0] = [0, 0, 0, 0]
    return root, path


# ------------------------------------------------------------------------------------------------ boxes
BAD_BOXES = [
    ({0: [30, 40, 0, 0]}, False, "boxes[0]", "positive width and height"),
    ({0: [30, 40, 20, 0]}, False, "boxes[0]", "positive width and height"),
    ({}, True, "boxes[0]", "marked absent"),
    ({3: [1e9, 40, 20, 16]}, False, "boxes[3]", "beyond the 160x120 image"),
    ({5: [30, 40, 1e9, 1e9]}, False, "boxes[5]", "beyond the 160x120 image"),
    ({0: [30, 40, 1e9, 16]}, False, "boxes[0]", "beyond the 160x120 image"),
    ({2: [-200, 40, 20, 16]}, False, "boxes[2]", "x in [-160, 320]"),
]


@pytest.mark.parametrize("rows, absent0, field, problem", BAD_BOXES)
def test_bad_boxes_are_refused_by_validate_track_evaluate_and_train(tmp_path, capsys, rows, absent0, field, problem):
    root, path = _dataset(tmp_path, rows, absent0)
    found = validate_sequence(path)
    assert any(v.field == field and problem in v.message for v in found), found
    rc, lines, out = _run(["data", "validate", root], capsys)
    assert rc == 1 and any(str(path) in line and field in line for line in lines), lines
    rc, lines, _ = _run(["track", "--tracker", "baseline", "--dataset", root, "--out", tmp_path / "res", "--quiet"],
                        capsys)
    assert rc == 2 and len(lines) == 1 and str(path) in lines[0] and field in lines[0] and problem in lines[0], lines
    assert not (tmp_path / "res").exists()  # the results folder it made is gone again
    results = tmp_path / "given"
    results.mkdir()
    for name in ("seq0", "seq1"):
        (results / f"{name}.txt").write_text("30,40,20,16\n" * 8)
    rc, lines, _ = _run(["evaluate", "--dataset", root, "--results", results], capsys)
    assert rc == 2 and len(lines) == 1 and str(path) in lines[0] and field in lines[0], lines
    from spiketrack.train.trainer import train

    with pytest.raises(DataFormatError, match=r"seq0\.h5 \[boxes\["):
        train(tiny_config(root), tmp_path / "run", progress=False, stop_after=1)
    assert not (tmp_path / "run").exists()


def test_writer_refuses_what_validate_flags_in_boxes(tmp_path):
    seq = moving_box_sequence("s", frames=4)
    seq.boxes[2] = [30, 40, 1e9, 16]
    with pytest.raises(DataFormatError, match=r"s\.h5 \[boxes\[2\]\]: box .* beyond the 160x120 image"):
        save_sequence(tmp_path / "s.h5", seq)
    assert list(tmp_path.iterdir()) == []


def test_a_box_partly_or_wholly_outside_within_the_margin_is_valid(tmp_path):
    """A target leaving the view: boxes cut by the border, or just beyond it, are real annotations."""
    seq = moving_box_sequence("s", frames=4)
    seq.boxes[1] = [150, 40, 20, 16]  # half outside
    seq.boxes[2] = [170, 40, 20, 16]  # wholly outside, within one image width
    seq.boxes[3] = [-100, -50, 20, 16]
    assert validate_sequence(save_sequence(tmp_path / "s.h5", seq)) == []


def test_corrupt_chunk_in_the_middle_of_the_event_stream_is_an_error_when_tracking(tmp_path, capsys):
    root = tmp_path / "ds"
    seq = moving_box_sequence("long", frames=8, size=(160, 120), start=(0, 0), velocity=(0, 0), width=160, height=120)
    seq.boxes[:] = [10, 10, 40, 40]
    path = save_sequence(root / "long.h5", seq)
    (root / "test.txt").write_text("long\n")
    with h5py.File(path, "r") as h5:
        assert h5["events/x"].id.get_num_chunks() >= 3  # 8 x 19200 events, 65536 per chunk: 1 is a middle one
        info = h5["events/x"].id.get_chunk_info(1)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 4)
        fh.write(b"\xff" * (info.size // 2))
    rc, lines, _ = _run(["track", "--tracker", "baseline", "--dataset", root, "--out", tmp_path / "res", "--quiet"],
                        capsys)
    assert rc == 2 and len(lines) == 1 and str(path) in lines[0] and "events/x" in lines[0], lines
    assert not (tmp_path / "res").exists()


# ------------------------------------------------------------------------------------------------ data validate
def test_validate_of_an_empty_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, lines, _ = _run(["data", "validate", tmp_path / "empty"], capsys)
    assert rc == 2 and len(lines) == 1 and str(tmp_path / "empty") in lines[0] and "no sequence files" in lines[0]


@pytest.mark.parametrize("line", ["../../etc/passwd", "/etc/passwd", "a/../../b"])
def test_validate_says_a_split_line_points_outside_the_dataset(tmp_path, capsys, line):
    root, _ = _dataset(tmp_path)
    (root / "test.txt").write_text(f"seq0\n{line}\nnope\n")
    rc, lines, _ = _run(["data", "validate", root], capsys)
    assert rc == 1
    assert f"{root / 'test.txt'} [line 2]: {line!r} points outside the dataset folder" in lines[0], lines
    assert f"{root / 'test.txt'} [line 3]: no sequence file nope.h5" in lines[1], lines


# ------------------------------------------------------------------------------------------------ training data
def test_negative_pairs_need_a_second_sequence_or_object(tmp_path):
    from spiketrack.train.trainer import train

    root = make_dataset(tmp_path / "ds", count=1)
    with pytest.raises(ConfigError, match=r"key 'data.negative_prob': 0.5 asks for negative pairs, but .*ds "
                                          r"\(data.datasets\[0\]\) has one sequence of one object"):
        train(tiny_config(root, **{"data.negative_prob": 0.5}), tmp_path / "run", progress=False, stop_after=1)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ run folders
@pytest.mark.parametrize("sets, key", [(["model.variant=huge"], "model.variant"),
                                       (["model.neuron.surrogate=nope"], "model.neuron.surrogate"),
                                       (["data.datasets=[{root: nowhere}]"], "nowhere")])
def test_train_refused_after_start_leaves_no_run_folder(tmp_path, capsys, sets, key):
    root = make_dataset(tmp_path / "ds", count=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  datasets: [{{root: '{root}'}}]\n  template_size: 32\n  search_size: 64\n")
    args = ["train", cfg, "--out", tmp_path / "run", "--no-progress"]
    for s in sets:
        args += ["--set", s]
    rc, lines, _ = _run(args, capsys)
    assert rc == 2 and len(lines) == 1 and key in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_failure_before_the_first_checkpoint_takes_back_what_the_run_wrote(tmp_path, monkeypatch):
    from spiketrack.train import trainer as trainer_mod

    root = make_dataset(tmp_path / "ds", count=2)

    def fail(self, stop_after=None):  # noqa: ANN001 - the loop fails at its first step (a NaN loss, a bad sample)
        self._open_writer()
        raise trainer_mod.NonFiniteLossError("loss became non-finite")

    monkeypatch.setattr(trainer_mod.Trainer, "fit", fail)
    with pytest.raises(trainer_mod.NonFiniteLossError):
        trainer_mod.train(tiny_config(root), tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()  # made by the run: removed
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(trainer_mod.NonFiniteLossError):
        trainer_mod.train(tiny_config(root), mine, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # the user's folder and file stay
    monkeypatch.undo()
    result = trainer_mod.train(tiny_config(root), tmp_path / "new", progress=False, stop_after=1)
    assert result.step == 1  # the corrected re-run meets no half-made folder


# ------------------------------------------------------------------------------------------------ memory
def test_sizes_beyond_the_machine_are_refused_before_allocation(capsys, monkeypatch):
    from spiketrack.models import memory_check

    monkeypatch.setattr(memory_check, "available_memory", lambda device="cpu": 2**29)  # needs 0.61 GiB
    rc, lines, _ = _run(["model", "summary", Path(__file__).parents[1] / "configs" / "quickstart_student.yaml",
                         "--no-macs", "--set", "model.template_timesteps=10000"], capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert "model.template_timesteps=10000" in lines[0] and "GiB for one forward pass" in lines[0], lines
    assert "needs at least 0.6 GiB" in lines[0] and "more than the 0.5 GiB of memory available" in lines[0], lines


def test_memory_estimate_is_exact_for_inputs_and_linear_in_timesteps():
    from spiketrack.models.memory_check import estimate_memory

    def est(tt: int):
        cfg = load_config(None, ["model.variant=quickstart", "model.timesteps=1", f"model.template_timesteps={tt}",
                                 "data.template_size=32", "data.search_size=64"])
        return estimate_memory(cfg, force=True)

    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    e10, e20, e30 = est(10), est(20), est(30)
    assert torch.equal(torch.rand(3), expected)  # the meta build drew nothing from the seeded stream
    assert e10.traced and e10.inputs == 4 * (10 * 2 * 32 * 32 + 1 * 2 * 64 * 64)
    assert e10.params == e20.params > 0
    # every template layer runs once per timestep: the template's share of the layer outputs grows linearly
    assert e30.activations - e20.activations == e20.activations - e10.activations > 0
    assert e30.need(4, training=True) > e30.need(1, training=True) > e30.need(1, training=False)


def test_training_batch_beyond_the_machine_is_refused_before_the_run_folder(tmp_path, monkeypatch):
    from spiketrack.models import memory_check
    from spiketrack.train.trainer import train

    root = make_dataset(tmp_path / "ds", count=2)
    cfg = tiny_config(root, **{"model.template_timesteps": 200, "train.batch_size": 64})
    need = memory_check.estimate_memory(cfg, force=True).need(64, training=True)
    monkeypatch.setattr(memory_check, "available_memory", lambda device="cpu": need - 1)
    with pytest.raises(ConfigError, match=r"one training step at batch 64 .* or train.batch_size"):
        train(cfg, tmp_path / "run", progress=False, stop_after=1)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ convert
T_EVENTS = [100, 150, 200, 250, 300, 350, 400, 500]


def make_eventvot_seq(root: Path, name: str, times: list[int] = T_EVENTS) -> Path:
    """An EventVOT sequence folder: CSV events x,y,p,t (in the given order), 4 boxes, absent.txt (1 = present)."""
    folder = root / name
    folder.mkdir(parents=True)
    rows = [f"{5 + i},{1 + i},{i % 2},{t}" for i, t in enumerate(times)]
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    (folder / "groundtruth.txt").write_text("10,20,30,40\n12,22,30,40\n14,24,30,40\n16,26,30,40\n")
    (folder / "absent.txt").write_text("1\n1\n1\n1\n")
    return folder


def test_convert_refuses_decreasing_timestamps_and_sorts_only_when_asked(tmp_path, capsys):
    src = tmp_path / "src"
    make_eventvot_seq(src, "rec", [100, 200, 150, 250, 300, 350, 400, 500])
    out = tmp_path / "out"
    rc, lines, stdout = _run(["data", "convert", "--format", "eventvot", "--src", src, "--out", out], capsys)
    assert rc == 1 and "event timestamps decrease at 1 place, first at event 2 (t 150 after 200)" in stdout and "--sort-events" in stdout, stdout
    assert not out.exists()  # nothing converted: no folder, no empty split list
    rc, lines, stdout = _run(["data", "convert", "--format", "eventvot", "--src", src, "--out", out,
                              "--sort-events"], capsys)
    assert rc == 0 and "repaired 1 sequences" in stdout and "sorted the events of rec.csv by time" in stdout, stdout
    from spiketrack.data.h5seq import open_sequence

    with open_sequence(out / "rec.h5") as seq:
        assert seq.all_events().t.tolist() == T_EVENTS
        assert seq.all_events().x.tolist() == [5, 7, 6, 8, 9, 10, 11, 12]  # each event keeps its x


@pytest.mark.parametrize("name", ["../../etc", "nope"])
def test_convert_checks_sequence_names_before_writing(tmp_path, capsys, name):
    make_eventvot_seq(tmp_path / "src" / "test", "rec")
    out = tmp_path / "out"
    rc, lines, _ = _run(["data", "convert", "--format", "eventvot", "--src", tmp_path / "src", "--out", out,
                         "--sequence", name], capsys)
    assert rc == 2 and len(lines) == 1 and f"--sequence {name}" in lines[0] and "rec" in lines[0], lines
    assert not out.exists()


def test_eventvot_layout_ground_truth_needs_a_visible_first_box(tmp_path, capsys):
    seq = tmp_path / "gt" / "rec"
    seq.mkdir(parents=True)
    (seq / "groundtruth.txt").write_text("10,20,0,0\n12,22,30,40\n")
    results = tmp_path / "res"
    results.mkdir()
    (results / "rec.txt").write_text("10,20,30,40\n12,22,30,40\n")
    rc, lines, _ = _run(["evaluate", "--dataset", tmp_path / "gt", "--results", results], capsys)
    assert rc == 2 and len(lines) == 1 and f"{seq / 'groundtruth.txt'} [line 1]: the first frame's box" in lines[0]
