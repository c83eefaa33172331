"""Tests of the synthetic benchmark: determinism, file validity, resuming, attribute rules and their physics."""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import pytest

from spiketrack.data import synth_attributes as A
from spiketrack.data.h5seq import open_sequence, validate_sequence
from spiketrack.data.synth import (
    CHALLENGE_PROB,
    add_synth_arguments,
    generate_benchmark,
    parse_frames,
    parse_size,
    render_sequence,
    run_synth,
)
from spiketrack.data.textures import PROCEDURAL_KINDS, bundled_images, load_image, procedural
from spiketrack.errors import ConfigError

W, H = 346, 260
NONE = {k: False for k in CHALLENGE_PROB}


def _datasets(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        out = {k: h5[k][()] for k in ("events/t", "events/x", "events/y", "events/p", "frames/t", "boxes", "absent")}
        out["frames/rgb"] = h5["frames/rgb"][()]
        out["attributes"] = np.array(h5.attrs["attributes"])
    return out


def test_same_seed_gives_identical_valid_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        generate_benchmark(out, 1, 1, seed=seed, frames=(12, 16), progress=False)
    assert (a / "train.txt").read_text() == "train_0000\n"
    assert (a / "test.txt").read_text() == "test_0000\n"
    for name in ("train_0000", "test_0000"):
        assert validate_sequence(a / f"{name}.h5") == []
        da, db, dc = _datasets(a / f"{name}.h5"), _datasets(b / f"{name}.h5"), _datasets(c / f"{name}.h5")
        assert len(da["events/t"]) > 100
        for key in da:
            assert np.array_equal(da[key], db[key]), key
        assert len(da["events/t"]) != len(dc["events/t"]) or not np.array_equal(da["events/t"], dc["events/t"])
        with open_sequence(a / f"{name}.h5") as seq:
            assert (seq.width, seq.height) == (W, H)
            assert 12 <= seq.num_frames <= 16
            assert np.all(np.diff(seq.frame_times) == 40_000)  # 25 Hz
            assert seq.absent[0] == 0 and np.all(seq.boxes[0, 2:] > 0)  # the first frame shows the target
            assert seq.rgb(0).shape == (H, W, 3)
            assert set(seq.attributes) <= set(A.ATTRIBUTE_CODES)


def test_resume_keeps_finished_files_and_redoes_changed_ones(tmp_path: Path) -> None:
    generate_benchmark(tmp_path, 1, 0, seed=0, frames=(8, 8), progress=False)
    path = tmp_path / "train_0000.h5"
    before = path.stat().st_mtime_ns
    again = generate_benchmark(tmp_path, 1, 0, seed=0, frames=(8, 8), progress=False)
    assert again[0].skipped and path.stat().st_mtime_ns == before
    other = generate_benchmark(tmp_path, 1, 0, seed=1, frames=(8, 8), progress=False)
    assert not other[0].skipped
    with open_sequence(path) as seq:
        assert "seed=1" in seq.source


def _box_events(seq, k: int) -> tuple[int, int]:
    """(events inside the target box of frame k, events away from the target's path over frame k's window)."""
    ev = seq.events.between(int(seq.frame_times[k - 1]), int(seq.frame_times[k]))
    x, y, w, h = seq.boxes[k]
    inside = (ev.x >= x) & (ev.x < x + w) & (ev.y >= y) & (ev.y < y + h)
    near = np.zeros(len(ev), bool)
    for x, y, w, h in seq.boxes[k - 1 : k + 1]:  # the target sweeps between the two boxes
        near |= (ev.x >= x - 3) & (ev.x < x + w + 3) & (ev.y >= y - 3) & (ev.y < y + h + 3)
    return int(inside.sum()), int((~near).sum())


def test_static_target_makes_few_events_and_is_tagged_nm() -> None:
    still = render_sequence("nm", W, H, 30, 2, force={**NONE, "no_motion": True})
    moving = render_sequence("mv", W, H, 30, 2, force=NONE)
    assert "NM" in still.attributes and "NM" not in moving.attributes
    still_in = np.mean([_box_events(still, k)[0] for k in range(1, 30)])
    moving_in = np.mean([_box_events(moving, k)[0] for k in range(1, 30)])
    assert still_in < 0.2 * moving_in


def test_camera_motion_makes_background_events() -> None:
    static = render_sequence("s", W, H, 30, 5, force=NONE)
    panning = render_sequence("p", W, H, 30, 5, force={**NONE, "camera_motion": True})
    assert "CM" in panning.attributes and "CM" not in static.attributes
    bg_static = np.mean([_box_events(static, k)[1] for k in range(1, 30)])
    bg_pan = np.mean([_box_events(panning, k)[1] for k in range(1, 30)])
    assert bg_pan > 3 * bg_static  # static: only noise (~200 per frame); panning: texture edges fire too


def test_out_of_view_frames_are_absent_with_zero_boxes() -> None:
    seq = render_sequence("ov", W, H, 60, 1, force={**NONE, "out_of_view": True})
    assert "OV" in seq.attributes
    assert seq.absent.sum() > 0 and seq.absent[0] == 0
    assert np.all(seq.boxes[seq.absent == 1] == 0)
    assert np.all(seq.truth.inside[seq.absent == 1] < A.ABSENT_VISIBLE + 1e-9)
    present = seq.boxes[seq.absent == 0]
    assert np.all(present[:, 0] >= 0) and np.all(present[:, 0] + present[:, 2] <= W + 1e-3)
    assert np.all(present[:, 1] >= 0) and np.all(present[:, 1] + present[:, 3] <= H + 1e-3)


def test_full_occlusion_hides_the_target_in_view() -> None:
    seq = render_sequence("foc", W, H, 60, 1, force={**NONE, "occlusion": True, "full_occlusion": True})
    assert "FOC" in seq.attributes
    hidden = (seq.absent == 1) & (seq.truth.inside >= A.FOC_MIN_INSIDE)
    assert hidden.any()
    assert np.all(seq.truth.occluded[hidden] > 0.9)


def test_low_light_is_darker_and_noisier() -> None:
    normal = render_sequence("n", W, H, 20, 7, force=NONE)
    dark = render_sequence("d", W, H, 20, 7, force={**NONE, "low_light": True})
    assert "LI" in dark.attributes and "LI" not in normal.attributes
    assert dark.rgb.mean() < 0.4 * normal.rgb.mean()
    assert dark.truth.mean_intensity < A.LI_MAX_MEAN


def test_fast_motion_rule_follows_rendered_displacement() -> None:
    seq = render_sequence("fm", W, H, 30, 4, force={**NONE, "fast_motion": True})
    steps = np.linalg.norm(np.diff(seq.truth.centres, axis=0), axis=1)
    assert ("FM" in seq.attributes) == bool(steps.max() > A.FM_FRACTION * np.hypot(W, H))
    assert "FM" in seq.attributes


def _truth(n: int = 10, **kw) -> A.SequenceTruth:
    base = dict(
        width=W,
        height=H,
        centres=np.stack([np.linspace(100, 100 + 2 * (n - 1), n), np.full(n, 120.0)], axis=1),
        sizes=np.full((n, 2), 40.0),
        visible=np.ones(n),
        inside=np.ones(n),
        occluded=np.zeros(n),
        camera=np.zeros((n, 2)),
        mean_intensity=0.4,
        clutter_cover=0.0,
        lookalike_present=np.zeros(n, bool),
        mover_present=np.zeros(n, bool),
        mover_speed=0.0,
    )
    base.update(kw)
    return A.SequenceTruth(**base)


def test_attribute_rules_on_hand_made_truth() -> None:
    assert A.assign_attributes(_truth()) == []
    fast = _truth().centres.copy()
    fast[5:, 0] += 18.0  # one step of 20 px > 0.04 * 433 = 17.3 px
    assert A.assign_attributes(_truth(centres=fast)) == ["FM"]
    fast[5:, 0] -= 2.0  # 18 px total step: still FM; 16 px: not
    assert "FM" in A.assign_attributes(_truth(centres=fast))
    fast[5:, 0] -= 2.0
    assert "FM" not in A.assign_attributes(_truth(centres=fast))
    assert A.assign_attributes(_truth(centres=np.full((10, 2), 100.0))) == ["NM"]
    occ = np.zeros(10)
    occ[4] = 0.3
    assert A.assign_attributes(_truth(occluded=occ)) == ["MOC"]
    occ[5] = 0.7
    assert A.assign_attributes(_truth(occluded=occ)) == ["HOC"]
    vis = np.ones(10)
    vis[6], occ[6] = 0.0, 1.0
    assert A.assign_attributes(_truth(occluded=occ, visible=vis)) == ["FOC"]
    sizes = np.full((10, 2), 40.0)
    sizes[7] = (60.0, 60.0)  # area x2.25 > 2
    assert A.assign_attributes(_truth(sizes=sizes)) == ["SV"]
    sizes = np.full((10, 2), 40.0)
    sizes[7] = (48.0, 34.0)  # aspect 1.41 > 1.3, area x1.02
    assert A.assign_attributes(_truth(sizes=sizes)) == ["DEF"]
    assert A.assign_attributes(_truth(sizes=np.full((10, 2), 15.0))) == ["ST"]  # 15 px < 0.06 * 300 px
    cam = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    assert A.assign_attributes(_truth(camera=cam)) == ["CM"]
    inside = np.ones(10)
    inside[3] = 0.4
    assert A.assign_attributes(_truth(inside=inside)) == ["OV"]
    present = np.zeros(10, bool)
    present[:3] = True  # 30% of frames
    assert A.assign_attributes(_truth(lookalike_present=present)) == ["SIO"]
    assert A.assign_attributes(_truth(mover_present=present, mover_speed=2.0)) == ["BOM"]
    assert A.assign_attributes(_truth(mover_present=present, mover_speed=0.1)) == []
    assert A.assign_attributes(_truth(clutter_cover=0.2, mean_intensity=0.05)) == ["LI", "BC"]
    boxes = _truth(visible=vis).boxes()
    assert np.all(boxes[6] == 0) and np.allclose(boxes[0], [80, 100, 40, 40])


def test_textures_are_local_and_well_formed() -> None:
    rng = np.random.default_rng(0)
    for kind in PROCEDURAL_KINDS:
        tex = procedural(kind, 24, 40, rng)
        assert tex.shape == (24, 40, 3) and tex.dtype == np.float32
        assert 0.0 <= tex.min() and tex.max() <= 1.0 and tex.std() > 0.02
    import skimage.data

    root = Path(skimage.data.__file__).parent
    for name in bundled_images():
        assert (root / name).is_file()
    if bundled_images():
        img = load_image(bundled_images()[0])
        assert img.ndim == 3 and img.shape[2] == 3 and img.max() <= 1.0


def test_cli_arguments(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_synth_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--train", "1", "--test", "0", "--frames", "6:6", "--no-rgb"])
    assert run_synth(args) == 0
    with open_sequence(tmp_path / "train_0000.h5") as seq:
        assert seq.num_frames == 6 and not seq.has_rgb
    assert parse_size("1280x720") == (1280, 720)
    assert parse_frames("60:100") == (60, 100) and parse_frames("80") == (80, 80)
    for bad in ("346", "axb", "10x10"):
        with pytest.raises(ConfigError, match="--size"):
            parse_size(bad)
    for bad in ("1:5", "9:3", "x"):
        with pytest.raises(ConfigError, match="--frames"):
            parse_frames(bad)
    with pytest.raises(ConfigError):
        render_sequence("x", W, H, 4, 0, force={"bogus": True})
