"""Template-dependence probe: known answers with a template-following oracle, a template-blind oracle and the
event-density baseline; frame-0 views; files; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from tracking_helpers import FRAME_US, OracleStudent, oracle_maps, small_config, write_dataset

from spiketrack.cli import main
from spiketrack.data.crop import CropWindow
from spiketrack.data.events import EventArray
from spiketrack.data.inputs import InputSpec
from spiketrack.data.sequence import MemorySequence
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.evaluation.probe import (
    ProbedSequence,
    foreign_pairs,
    probe_template,
    read_probe,
    transplant_events,
    transplant_image,
)

SIZE = 16


def _square_events(x: int, y: int, k: int, polarity: int) -> EventArray:
    yy, xx = np.mgrid[y : y + SIZE, x : x + SIZE]
    n = xx.size
    t = (k + 1) * FRAME_US - FRAME_US + 1 + (np.arange(n) * (FRAME_US - 1)) // n
    return EventArray.from_arrays(t, xx.ravel(), yy.ravel(), np.full(n, polarity))


def two_objects(name: str, target_polarity: int, frames: int = 20, attributes: list[str] | None = None,
                rgb: bool = False, scene: str | None = None) -> MemorySequence:
    """A target of one polarity and a distractor of the other that converges on it and passes it."""
    boxes, parts = [], []
    for k in range(frames):
        tx, dx = 20 + 3 * k, 56 + k
        boxes.append([tx, 50, SIZE, SIZE])
        ev = EventArray.concatenate([_square_events(tx, 50, k, target_polarity),
                                     _square_events(dx, 54, k, 1 - target_polarity)])
        parts.append(ev[np.argsort(ev.t, kind="stable")])
    image = np.full((frames, 120, 160, 3), 90, np.uint8) if rgb else None
    return MemorySequence(name, 160, 120, EventArray.concatenate(parts),
                          np.arange(1, frames + 1, dtype=np.int64) * FRAME_US, np.array(boxes, np.float32),
                          np.zeros(frames, np.uint8), rgb=image, attributes=attributes or [], scene=scene)


class PolarityOracle(nn.Module):
    """Follows its template: the template's dominant polarity selects which events locate the target.

    An all-zero template has no polarity, so it falls back to every event (the salient moving thing).
    """

    input_spec = InputSpec.event_bins(2)  # small_config's model.timesteps

    def encode_template(self, bins: torch.Tensor) -> dict:
        counts = bins.sum(dim=(0, 3, 4))[0]  # [2] OFF, ON
        return {"polarity": None if float(counts.sum()) == 0 else int(counts.argmax())}

    def merge_memories(self, memories: list) -> dict:
        return memories[0]

    def track(self, bins: torch.Tensor, memory: dict, return_features: bool = False) -> dict:
        pol = memory["polarity"]
        counts = bins.sum(dim=(0, 2)) if pol is None else bins[:, :, pol].sum(dim=0)
        return oracle_maps(counts)


@pytest.fixture(scope="module")
def probe_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe") / "ds"
    # a and c are two views of one scene (same target polarity): each one's foreign template must come from b
    seqs = [two_objects("a", 1, attributes=["MO"], scene="ac"), two_objects("b", 0),
            two_objects("c", 1, attributes=["MO"], scene="ac")]
    return write_dataset(root, seqs)


def test_template_following_model_shows_a_clear_drop(probe_dataset: Path, tmp_path: Path) -> None:
    res = probe_template(small_config(), PolarityOracle(), probe_dataset, "test", tmp_path / "p",
                         attributes=("MO",), name="aware", progress=False)
    assert res.modes["real"]["SR"] > 80
    assert res.drop["zeroed"] > 15 and res.drop["foreign"] > 30
    assert res.attributes["MO"]["sequences"] == 2
    assert res.attributes["MO"]["drop"]["foreign"] > 30
    assert res.pairs["a"] == "b" and res.pairs["c"] == "b" and res.pairs["b"] in ("a", "c")
    saved = read_probe(tmp_path / "p")
    assert saved["drop"] == pytest.approx(res.drop) and saved["tracker"] == "aware"
    md = (tmp_path / "p" / "probe.md").read_text()
    assert "| all | 3 |" in md and "| MO | 2 |" in md
    for mode in ("real", "zeroed", "foreign"):
        assert len((tmp_path / "p" / mode / "a.txt").read_text().split()) == 20
    # an existing results folder can stand for the real template: same numbers, not tracked again
    again = probe_template(small_config(), PolarityOracle(), probe_dataset, "test", tmp_path / "q",
                           modes=("zeroed",), real_results=tmp_path / "p" / "real", progress=False)
    assert again.modes["real"] == res.modes["real"] and again.drop["zeroed"] == res.drop["zeroed"]
    assert not (tmp_path / "q" / "real").exists() and again.results["real"] == str(tmp_path / "p" / "real")


@pytest.mark.parametrize("tracker", ["baseline", "blind"])
def test_template_blind_trackers_show_exactly_zero_drop(probe_dataset: Path, tmp_path: Path, tracker: str) -> None:
    source = "baseline" if tracker == "baseline" else OracleStudent()
    res = probe_template(small_config(), source, probe_dataset, "test", tmp_path / tracker, progress=False)
    assert res.drop == {"zeroed": 0.0, "foreign": 0.0}
    assert res.modes["real"]["SR"] > 0
    for mode in ("zeroed", "foreign"):
        assert (tmp_path / tracker / mode / "b.txt").read_text() == (tmp_path / tracker / "real" / "b.txt").read_text()


def test_probed_sequence_replaces_only_frame_zero() -> None:
    a, b = two_objects("a", 1, frames=4, rgb=True), two_objects("b", 0, frames=4, rgb=True)
    b.boxes[0] = [56, 54, SIZE, SIZE]  # b's template: its distractor (polarity 1), away from a's first box
    b._rgb[0, 54:70, 56:72] = 200
    zeroed = ProbedSequence(a, "zeroed")
    assert len(zeroed.frame_events(0)) == 0 and not zeroed.rgb(0).any()
    for k in (1, 2, 3):
        assert np.array_equal(zeroed.frame_events(k).t, a.frame_events(k).t)
        assert np.array_equal(zeroed.rgb(k), a.rgb(k))
    assert np.array_equal(zeroed.events_between(0, 4 * FRAME_US).t, a.events_between(FRAME_US, 4 * FRAME_US).t)
    foreign = ProbedSequence(a, "foreign", b)
    ev0 = foreign.frame_events(0)
    assert len(ev0) == SIZE * SIZE and np.all(ev0.p == 1)  # exactly b's distractor square, same scale
    t0, t1 = foreign.frame_window(0)
    assert np.all((ev0.t > t0) & (ev0.t <= t1)) and np.all(np.diff(ev0.t) >= 0)
    dst = CropWindow.around(a.boxes[0], 2.0)
    assert np.all(np.abs(ev0.x + 0.5 - dst.cx) <= dst.side / 2) and np.all(np.abs(ev0.y + 0.5 - dst.cy) <= dst.side / 2)
    img = foreign.rgb(0)
    cx, cy = int(dst.cx), int(dst.cy)
    assert img[cy, cx].tolist() == [200, 200, 200]  # b's patch now sits on a's first box
    assert ev0.x.min() == a.boxes[0, 0] and ev0.y.min() == a.boxes[0, 1]
    assert img[0, 0].tolist() == [0, 0, 0] and np.array_equal(foreign.boxes, a.boxes)


def test_transplant_scales_into_the_destination_crop() -> None:
    src, dst = CropWindow(20.0, 20.0, 10.0), CropWindow(60.0, 40.0, 20.0)
    ev = EventArray.from_arrays(np.array([5, 6, 7]), np.array([15, 19, 40]), np.array([15, 19, 40]),
                                np.array([1, 0, 1]))
    out = transplant_events(ev, src, dst, (0, 10), (100, 120), 160, 120)
    assert out.x.tolist() == [51, 59] and out.y.tolist() == [31, 39]  # (x + .5 - 20) * 2 + 60, floored
    assert out.t.tolist() == [110, 112] and out.p.tolist() == [1, 0]
    image = np.zeros((40, 40, 3), np.uint8)
    image[18:22, 18:22] = 255
    warped = transplant_image(image, src, dst, 160, 120)
    assert warped[40, 60].tolist() == [255] * 3 and warped[40, 52].tolist() == [0] * 3
    assert warped[:, :50].sum() == 0


def test_foreign_template_comes_from_another_scene() -> None:
    names = ["s0", "s0_o1", "s0_o2", "s1", "s1_o1", "s2"]
    scenes = {n: n.split("_")[0] for n in names}
    pairs = foreign_pairs(names, scenes)
    assert set(pairs) == set(names)
    assert all(scenes[pairs[n]] != scenes[n] for n in names)  # never a look-alike of the same scene
    assert foreign_pairs(names, scenes) == pairs  # fixed seed: the same pairs in every run
    assert foreign_pairs(names, scenes, seed=1) != pairs
    assert set(foreign_pairs(["a", "b"]).items()) == {("a", "b"), ("b", "a")}  # default: one scene per sequence
    with pytest.raises(ConfigError, match="at least 2 scenes"):
        foreign_pairs(["s0", "s0_o1"], scenes)


def test_errors_name_the_problem(probe_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        foreign_pairs(["only"])
    with pytest.raises(ConfigError, match="modes"):
        probe_template(small_config(), "baseline", probe_dataset, "test", tmp_path / "x", modes=("rotated",))
    with pytest.raises(ConfigError, match="attribute 'XX'"):
        probe_template(small_config(), "baseline", probe_dataset, "test", tmp_path / "y", attributes=("XX",),
                       progress=False)
    with pytest.raises(DataFormatError, match="probe results not found"):
        read_probe(tmp_path / "nothing")


def test_cli_probe_template_baseline(probe_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model: {kind: student, variant: quickstart}\ndata: {template_size: 64, search_size: 128}\n")
    assert main(["probe", "template", "--config", str(config), "--tracker", "baseline", "--dataset",
                 str(probe_dataset), "--out", str(tmp_path / "cli"), "--attribute", "MO", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| all | 3 |" in out and "+0.0" in out
    data = json.loads((tmp_path / "cli" / "probe.json").read_text())
    assert data["drop"] == {"zeroed": 0.0, "foreign": 0.0} and data["tracker"] == "event-density"
    assert main(["probe", "template", "--config", str(config), "--dataset", str(probe_dataset),
                 "--out", str(tmp_path / "z")]) == 2  # a model tracker needs --checkpoint
