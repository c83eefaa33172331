"""Dataset runner: result files, resume after interruption, CLI with the baseline and parallel workers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from tracking_helpers import OracleStudent, iou, moving_box_sequence, small_config, write_dataset

from spiketrack.cli import main
from spiketrack.config import dump_config
from spiketrack.evaluation.textfiles import read_boxes, read_times
from spiketrack.tracking.run_identity import IDENTITY_FILE
from spiketrack.tracking.runner import is_finished, track_dataset


@pytest.fixture
def dataset(tmp_path):
    seqs = [
        moving_box_sequence("a", frames=6),
        moving_box_sequence("b", frames=5, velocity=(-2, 1), start=(100, 60)),
        moving_box_sequence("c", frames=4, empty={2}),
    ]
    return write_dataset(tmp_path / "data", seqs), seqs


def test_writes_result_files_readable_by_evaluation(dataset, tmp_path):
    root, seqs = dataset
    out = tmp_path / "res"
    summary = track_dataset(small_config("student"), OracleStudent(), root, "test", out, workers=2, progress=False)
    assert sorted(summary.tracked) == ["a", "b", "c"] and summary.skipped == []
    assert summary.frames == 15 and summary.fps > 0
    assert set(summary.stages) == {"data", "representation", "model", "postprocess"}
    for s in seqs:
        boxes = read_boxes(out / f"{s.name}.txt")
        times = read_times(out / f"{s.name}_time.txt")
        assert boxes.shape == (s.num_frames, 4) and times.shape == (s.num_frames,)
        overlap = iou(boxes, s.boxes.astype(np.float64))
        if s.name == "c":  # frame 2 has no events: the frame-1 box is kept
            assert np.array_equal(boxes[2], boxes[1])
            overlap = overlap[[0, 1, 3]]
        assert overlap.min() > 0.9
    assert summary.seconds == pytest.approx(sum(read_times(out / f"{s.name}_time.txt").sum() for s in seqs), rel=1e-3)
    assert not list(out.glob(".*tmp*"))


def test_interrupted_run_resumes_without_redoing_finished(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "res"
    cfg = small_config("student")

    def interrupt(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        track_dataset(cfg, OracleStudent(), root, "test", out, progress=False, on_result=interrupt)
    finished = [n for n in "abc" if is_finished(out, n)]
    assert finished == ["a"]  # the first sequence was written before the interruption
    stamp = (out / "a.txt").stat().st_mtime_ns, (out / "a_time.txt").stat().st_mtime_ns
    (out / ".b.txt.tmp-123").write_text("1,2,3,4\n")  # debris of a killed write
    oracle = OracleStudent()
    summary = track_dataset(cfg, oracle, root, "test", out, progress=False)
    assert summary.skipped == ["a"] and sorted(summary.tracked) == ["b", "c"]
    assert oracle.encoded == 2  # one template per tracked sequence: 'a' was not redone
    assert ((out / "a.txt").stat().st_mtime_ns, (out / "a_time.txt").stat().st_mtime_ns) == stamp
    # a third run has nothing to do
    again = track_dataset(cfg, OracleStudent(), root, "test", out, progress=False)
    assert again.tracked == [] and sorted(again.skipped) == ["a", "b", "c"] and again.frames == 0


def test_truncated_result_is_redone(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "res"
    cfg = small_config("student")
    track_dataset(cfg, OracleStudent(), root, "test", out, progress=False)
    (out / "b_time.txt").write_text("0.1\n")  # time file does not match the 5 boxes
    assert not is_finished(out, "b")
    summary = track_dataset(cfg, OracleStudent(), root, "test", out, progress=False)
    assert summary.tracked == ["b"] and len(read_times(out / "b_time.txt")) == 5


def test_results_folder_is_not_resumed_with_other_settings_or_weights(dataset, tmp_path):
    from spiketrack.config import to_dict
    from spiketrack.errors import ConfigError
    from spiketrack.models import build_model
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from spiketrack.train.checkpoint import atomic_save

    root, _ = dataset
    cfg = small_config("student")
    out = tmp_path / "base"
    track_dataset(cfg, "baseline", root, "test", out, progress=False)
    assert json.loads((out / IDENTITY_FILE).read_text())["tracker"] == "event-density"  # "baseline" is its alias
    # a setting the event-density tracker does not read leaves its boxes alone: the same run, nothing re-tracked
    cfg.tracking.size_update_rate = 0.5
    assert track_dataset(cfg, "event-density", root, "test", out, progress=False).skipped == ["a", "b", "c"]
    # one it reads: refused, naming the key, and nothing in the folder changes
    cfg.tracking.empty_score_decay = 0.25
    stamp = (out / "a.txt").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"tracking.empty_score_decay: then 0.5, now 0.25"):
        track_dataset(cfg, "baseline", root, "test", out, progress=False)
    assert (out / "a.txt").stat().st_mtime_ns == stamp
    # the same checkpoint path with other weights (a model retrained into the same run folder): refused
    ckpt_cfg = small_config("student")
    ckpt = tmp_path / "run" / "best.pt"

    def save(seed: int) -> None:
        torch.manual_seed(seed)
        atomic_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": "student",
                     "config": to_dict(ckpt_cfg), "model": build_model(ckpt_cfg).state_dict()}, ckpt)

    save(0)
    res = tmp_path / "student"
    assert sorted(track_dataset(ckpt_cfg, ckpt, root, "test", res, progress=False).tracked) == ["a", "b", "c"]
    # the checkpoint alone rebuilds its model (its stored config): the same boxes without --config
    assert main(["track", "--checkpoint", str(ckpt), "--dataset", str(root), "--out", str(tmp_path / "alone"),
                 "--quiet"]) == 0
    assert (tmp_path / "alone" / "b.txt").read_text() == (res / "b.txt").read_text()
    assert track_dataset(ckpt_cfg, ckpt, root, "test", res, progress=False).skipped == ["a", "b", "c"]
    save(1)
    with pytest.raises(ConfigError, match="tracker sha256"):
        track_dataset(ckpt_cfg, ckpt, root, "test", res, progress=False)


def test_cli_baseline_parallel_matches_sequential(dataset, tmp_path, capsys):
    root, seqs = dataset
    config = tmp_path / "cfg.yaml"
    dump_config(small_config("student"), config)
    common = ["track", "--config", str(config), "--tracker", "baseline", "--dataset", str(root), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "seq")]) == 0
    assert "frames/s" in capsys.readouterr().out
    assert main([*common, "--out", str(tmp_path / "par"), "--workers", "2"]) == 0
    for s in seqs:
        a = read_boxes(tmp_path / "seq" / f"{s.name}.txt")
        b = read_boxes(tmp_path / "par" / f"{s.name}.txt")
        assert a.shape == (s.num_frames, 4) and np.array_equal(a, b)
        assert np.array_equal(a[0], s.boxes[0])


def test_cli_errors_are_reported(dataset, tmp_path, capsys):
    root, _ = dataset
    config = tmp_path / "cfg.yaml"
    dump_config(small_config("student"), config)
    rc = main(["track", "--config", str(config), "--dataset", str(root), "--out", str(tmp_path / "o")])
    assert rc == 2 and "--checkpoint" in capsys.readouterr().err
    rc = main(["track", "--config", str(config), "--checkpoint", str(tmp_path / "missing.pt"),
               "--dataset", str(root), "--out", str(tmp_path / "o")])
    assert rc == 2 and "missing.pt" in capsys.readouterr().err
    rc = main(["track", "--config", str(config), "--tracker", "baseline", "--dataset", str(root),
               "--split", "val", "--out", str(tmp_path / "o")])
    assert rc == 2 and "val.txt" in capsys.readouterr().err


def test_first_frame_must_be_visible(tmp_path):
    import h5py

    from spiketrack.errors import DataFormatError

    seq = moving_box_sequence("z", frames=3)
    seq.boxes[0] = 0
    seq.absent[0] = 1
    with pytest.raises(DataFormatError, match=r"boxes\[0\].*marked absent"):  # the writer refuses such a file
        write_dataset(tmp_path / "d", [seq])
    root = write_dataset(tmp_path / "d", [moving_box_sequence("z", frames=3)])
    with h5py.File(root / "z.h5", "r+") as h5:  # a file written by another tool
        h5["boxes"][0] = 0
        h5["absent"][0] = 1

    with pytest.raises(DataFormatError, match="boxes"):
        track_dataset(small_config("student"), OracleStudent(), root, "test", tmp_path / "o", progress=False)
    assert not os.path.exists(tmp_path / "o" / "z.txt")


@pytest.mark.slow
def test_spawned_workers_track_with_a_model(dataset, tmp_path):
    root, seqs = dataset
    out = tmp_path / "res"
    cfg = small_config("student")
    summary = track_dataset(cfg, OracleStudent(), root, "test", out, workers=2, progress=False, start_method="spawn")
    assert sorted(summary.tracked) == ["a", "b", "c"]
    boxes = read_boxes(out / "a.txt")
    assert iou(boxes, seqs[0].boxes.astype(np.float64)).min() > 0.9


def test_device_choice(dataset, tmp_path):
    from spiketrack.device import resolve_device
    from spiketrack.errors import ConfigError

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="--device tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device(None) == "cpu"
        root, _ = dataset
        with pytest.raises(ConfigError, match="CUDA is not available"):
            track_dataset(small_config("student"), OracleStudent(), root, "test", tmp_path / "o", device="cuda")
