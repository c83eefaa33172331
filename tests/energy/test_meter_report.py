"""Per-sequence accounting (E_seq = template + updates + search frames), the energy command and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spiketrack.cli import main
from spiketrack.config import load_config, to_dict
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.data.sequence import MemorySequence
from spiketrack.energy.counter import count_operations
from spiketrack.energy.dataset import sequence_energy
from spiketrack.energy.meter import EnergyMeter
from spiketrack.energy.report import RunSpec
from spiketrack.models import build_model

FRAME_US = 10_000
SETS = ["model.kind=student", "model.variant=quickstart", "data.template_size=64", "data.search_size=128",
        "model.timesteps=2"]


def box_sequence(name: str, frames: int = 4) -> MemorySequence:
    """A 20x16 box moving 3 px/frame; every box pixel fires one event per frame."""
    boxes, parts = [], []
    times = np.arange(1, frames + 1, dtype=np.int64) * FRAME_US
    for k in range(frames):
        x, y = 30 + 3 * k, 40 + 2 * k
        boxes.append([x, y, 20, 16])
        yy, xx = np.mgrid[y : y + 16, x : x + 20]
        n = xx.size
        t = times[k] - FRAME_US + 1 + (np.arange(n) * (FRAME_US - 1)) // n
        parts.append(EventArray.from_arrays(t, xx.ravel(), yy.ravel(), np.arange(n) % 2))
    return MemorySequence(name, 160, 120, EventArray.concatenate(parts), times, np.array(boxes, np.float32),
                          np.zeros(frames, np.uint8))


def firing_student():
    """Quickstart student whose stem drives its neurons hard enough to spike (a fresh init barely fires)."""
    cfg = load_config(None, SETS)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.backbone.stem.conv.conv.weight.mul_(30.0)
    return cfg, model


@pytest.fixture(scope="module")
def student():
    return firing_student()


def test_meter_direct_api_sums_frames_and_template(student):
    cfg, model = student
    meter = EnergyMeter.from_config(model, cfg)
    t_bins = torch.poisson(torch.full((2, 1, 2, 64, 64), 0.5))
    s_bins = torch.poisson(torch.full((2, 1, 2, 128, 128), 0.5))
    memory = meter.count_template(model.encode_template, t_bins)
    for _ in range(2):
        meter.count_search(model.track, s_bins, memory)
    meter.count_template(model.encode_template, t_bins, update=True)
    s = meter.summary()
    assert s["frames"] == 3 and [f["kinds"] for f in s["per_frame"]] == [
        ["template_init"], ["search"], ["search", "template_update"]]
    # same inputs -> same counts as a standalone count; the search call is dominated by SOPs once neurons fire
    alone = count_operations(model, s_bins, memory, timesteps=2, fn=model.track)
    assert s["kinds"]["search"]["sop"] == 2 * alone.total_sop > 0
    assert s["kinds"]["search"]["mac"] == 2 * alone.total_mac
    total = s["total"]["energy_mj"]
    assert total == pytest.approx(sum(f["energy_mj"] for f in s["per_frame"]))
    assert total == pytest.approx(sum(k["energy_mj"] for k in s["kinds"].values()))
    assert s["energy_mj_sequence"] == total and s["energy_mj_per_frame"] == pytest.approx(total / 3)
    assert sum(s["per_timestep_sop"]) <= s["total"]["sop"]
    layer_sop = sum(lay["sop"] for lay in s["layers"]["search"])
    assert layer_sop == s["kinds"]["search"]["sop"]


def test_sequence_energy_is_template_plus_search_frames(student):
    cfg, model = student
    seq = box_sequence("a", frames=4)
    summary, result = sequence_energy(model, seq, cfg)
    assert summary["frames"] == 4 and len(result.boxes) == 4
    frames = summary["per_frame"]
    assert frames[0]["kinds"] == ["template_init"] and all(f["kinds"] == ["search"] for f in frames[1:])
    k = summary["kinds"]
    assert summary["energy_mj_sequence"] == pytest.approx(
        k["template_init"]["energy_mj"] + k["template_update"]["energy_mj"] + sum(f["energy_mj"] for f in frames[1:]))
    assert k["search"]["calls"] == 3 and k["search"]["sop"] > 0


def test_run_spec_parsing():
    assert RunSpec.parse("st=res/a:res/a.json") == RunSpec("st", Path("res/a"), Path("res/a.json"))
    assert RunSpec.parse("st=res/a") == RunSpec("st", Path("res/a"), None)
    from spiketrack.errors import ConfigError

    with pytest.raises(ConfigError, match="NAME=RESULTS_DIR"):
        RunSpec.parse("res/a")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, student):
    root = tmp_path_factory.mktemp("energy")
    data = root / "data"
    data.mkdir()
    seqs = [box_sequence("s1", 4), box_sequence("s2", 3)]
    for s in seqs:
        write_sequence(data / f"{s.name}.h5", name=s.name, width=s.width, height=s.height, events=s.events,
                       frame_times=s.frame_times, boxes=s.boxes, absent=s.absent)
    write_split(data, "test", [s.name for s in seqs])
    cfg, model = student
    cfg_path = root / "student.yaml"
    cfg_path.write_text(yaml.safe_dump(to_dict(cfg)))
    ckpt = root / "student.pt"
    torch.save({"format": "spiketrack-checkpoint", "version": 1, "kind": "student", "config": to_dict(cfg),
                "model": model.state_dict()}, ckpt)
    results = root / "results"
    results.mkdir()
    for s in seqs:  # a perfect tracker's result files
        np.savetxt(results / f"{s.name}.txt", s.boxes, fmt="%.2f", delimiter=",")
    return root, data, cfg_path, ckpt, results


def test_energy_command_and_report_files_match_json(workspace):
    root, data, cfg_path, ckpt, results = workspace
    energy_json = root / "student_energy.json"
    rc = main(["energy", "--config", str(cfg_path), "--checkpoint", str(ckpt), "--dataset", str(data),
               "--out", str(energy_json)])
    assert rc == 0
    e = json.loads(energy_json.read_text())
    assert set(e["sequences"]) == {"s1", "s2"} and e["overall"]["frames"] == 7
    for s in e["sequences"].values():  # per-sequence total = sum of frames (template init is frame 0)
        assert s["energy_mj_sequence"] == pytest.approx(sum(f["energy_mj"] for f in s["per_frame"]))
    assert e["overall"]["energy_mj_per_frame"] == pytest.approx(
        sum(s["total"]["energy_mj"] for s in e["sequences"].values()) / 7)

    out = root / "report"
    rc = main(["report", "--dataset", str(data), "--run", f"student={results}:{energy_json}", "--out", str(out)])
    assert rc == 0
    for name in ("report.json", "report.md", "accuracy_energy.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    rep = json.loads((out / "report.json").read_text())
    (row,) = rep["runs"]
    assert row["SR"] == pytest.approx(100 * 20 / 21, abs=0.05)  # perfect boxes: IoU = 1 passes 20 of 21 thresholds
    assert row["energy_mj_per_frame"] == pytest.approx(e["overall"]["energy_mj_per_frame"])
    assert row["energy_mj_per_sequence"] == pytest.approx(e["overall"]["energy_mj_per_sequence"])
    assert row["parameters"] == e["model"]["parameters"] and row["spiking"]
    md = (out / "report.md").read_text()
    assert (f"| student | {row['SR']:.1f} | {row['PR']:.1f} | {row['NPR']:.1f} | {row['parameters'] / 1e6:.2f} | "
            f"{row['mac_per_frame'] / 1e9:.4f} | {row['sop_per_frame'] / 1e9:.4f} | "
            f"{row['energy_mj_per_frame']:.4f} | {row['energy_mj_per_sequence']:.4f} |") in md
    assert "SDTrack-Tiny: 8.16 mJ/frame" in md and "Per-layer operations of student" in md


def test_report_errors_are_clean(workspace, capsys):
    root, data, _, _, results = workspace
    rc = main(["report", "--dataset", str(data), "--run", f"x={results}:{root / 'nope.json'}",
               "--out", str(root / "r2")])
    assert rc == 2 and "nope.json" in capsys.readouterr().err


def test_report_shows_template_probe_drops(workspace, capsys):
    root, data, _, _, results = workspace
    energy_json = root / "student_energy.json"
    if not energy_json.is_file():
        pytest.skip("needs the energy JSON of test_energy_command_and_report_files_match_json")
    probe = root / "probe_student"
    probe.mkdir(exist_ok=True)
    (probe / "probe.json").write_text(json.dumps({"modes": {"real": {"SR": 50.0}, "zeroed": {"SR": 37.66},
                                                            "foreign": {"SR": 30.0}},
                                                  "drop": {"zeroed": 12.34, "foreign": 20.0}}))
    out = root / "report_probe"
    run = f"student={results}:{energy_json}"
    assert main(["report", "--dataset", str(data), "--run", run, "--out", str(out), "--probe", f"student={probe}"]) == 0
    (row,) = json.loads((out / "report.json").read_text())["runs"]
    assert row["template_drop"] == {"zeroed": 12.3, "foreign": 20.0}
    md = (out / "report.md").read_text()
    assert "| tracker | SR | PR | NPR | SR drop zeroed | SR drop foreign | params (M) |" in md
    assert f"| student | {row['SR']:.1f} | {row['PR']:.1f} | {row['NPR']:.1f} | +12.3 | +20.0 |" in md
    capsys.readouterr()
    assert main(["report", "--dataset", str(data), "--run", run, "--out", str(out), "--probe", f"teacher={probe}"]) == 2
    assert "match no --run" in capsys.readouterr().err


def test_report_baseline_row(workspace):
    """--baseline: a non-learned tracker scored with the runs, listed without energy."""
    root, data, _, _, results = workspace
    energy_json = root / "student_energy.json"
    if not energy_json.is_file():
        pytest.skip("needs the energy JSON of test_energy_command_and_report_files_match_json")
    shifted = root / "shifted"
    shifted.mkdir(exist_ok=True)
    for f in results.glob("*.txt"):  # the perfect boxes moved 100 px right after frame 0: SR of frame 0 only
        boxes = np.loadtxt(f, delimiter=",", ndmin=2)
        boxes[1:, 0] += 100
        np.savetxt(shifted / f.name, boxes, fmt="%.2f", delimiter=",")
    out = root / "report_baseline"
    assert main(["report", "--dataset", str(data), "--run", f"student={results}:{energy_json}",
                 "--baseline", f"density={shifted}", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert [r["tracker"] for r in rep["runs"]] == ["student"]
    base = rep["baselines"]["density"]
    assert base["results"] == str(shifted) and base["SR"] < rep["runs"][0]["SR"]
    assert f"| density (no model, not counted) | {base['SR']:.1f} |" in (out / "report.md").read_text()
    assert main(["report", "--dataset", str(data), "--run", f"student={results}:{energy_json}",
                 "--baseline", "density", "--out", str(out)]) == 2


def test_test_time_tuning_is_charged_once_and_shown_apart():
    """Hand-made sequence summaries: 3 mJ of tuning in one of two 10-frame sequences (7 mJ in all)."""
    from spiketrack.energy.dataset import overall_from_sequences
    from spiketrack.energy.report import render_markdown

    def seq(total_mj, tuning_mj=None):
        kinds = {"template_init": {"calls": 1, "energy_mj": 0.5}, "search": {"calls": 9, "energy_mj": 1.0}}
        if tuning_mj is not None:
            kinds["test_time_tuning"] = {"calls": 3, "energy_mj": tuning_mj}
        return {"frames": 10, "total": {"energy_mj": total_mj, "mac": 0, "sop": 0}, "kinds": kinds}

    ov = overall_from_sequences({"a": seq(5.0, 3.0), "b": seq(2.0)})
    assert ov["energy_mj_per_frame"] == pytest.approx(0.35)  # everything, the tuning charged once
    assert ov["energy_mj_tuning_per_sequence"] == pytest.approx(1.5)
    assert ov["energy_mj_per_frame_without_tuning"] == pytest.approx(0.2)
    assert "energy_mj_tuning_per_sequence" not in overall_from_sequences({"b": seq(2.0)})
    row = {"tracker": "s", "SR": 1.0, "PR": 2.0, "NPR": 3.0, "parameters": None, "mac_per_frame": 0.0,
           "sop_per_frame": 0.0, "energy_mj_per_frame": 0.35, "energy_mj_per_sequence": 3.5, "firing_rate": None,
           "energy_mj_tuning_per_sequence": 1.5, "energy_mj_per_frame_without_tuning": 0.2,
           "search_layers_per_frame": []}
    md = render_markdown({"dataset": "d", "split": "test", "protocol": "eventvot", "profiles": [], "runs": [row],
                          "published_reference": [], "notes": []})
    assert "| mJ/frame | mJ/sequence | mJ/frame without tuning | tuning mJ/sequence |" in md
    assert "| 0.3500 | 3.5000 | 0.2000 | 1.5000 | - | - |" in md
    assert "charged once" in md
