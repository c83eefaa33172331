"""The NCC template matcher: exact placements on known patterns, appearance over saliency, its table row, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tracking_helpers import write_dataset

from spiketrack.cli import main
from spiketrack.config import NccConfig, load_config
from spiketrack.data.events import EventArray
from spiketrack.data.sequence import MemorySequence
from spiketrack.errors import DataFormatError
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.ncc import NccTracker, normalised_cross_correlation
from spiketrack.tracking.trackers import NON_LEARNED, non_learned

W, H, US = 160, 120, 10_000


def test_template_cut_from_the_search_image_is_found_at_its_position() -> None:
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((2, 40, 40)).astype(np.float32))
    template = image[:, 13:23, 7:17]  # placement (row 13, col 7)
    ncc = normalised_cross_correlation(image, template)
    assert ncc.shape == (31, 31)
    assert np.unravel_index(int(ncc.argmax()), ncc.shape) == (13, 7)
    assert float(ncc[13, 7]) == pytest.approx(1.0, abs=1e-5)
    assert float(ncc.abs().max()) <= 1.0 + 1e-5
    # an affine change of intensity (gain and offset) leaves the match unchanged: that is what "normalised" means
    assert float(normalised_cross_correlation(3 * image + 1, template)[13, 7]) == pytest.approx(1.0, abs=1e-5)
    flat = torch.ones(1, 20, 20)  # a window without texture matches nothing
    assert float(normalised_cross_correlation(flat, template[:1]).abs().max()) == 0.0


def _texture(seed: int, size: int) -> np.ndarray:
    """A random binary texture of ``size`` x ``size`` pixels (which pixels fire)."""
    return np.random.default_rng(seed).random((size, size)) < 0.35


def _events(k: int, patches: list[tuple[np.ndarray, int, int]]) -> EventArray:
    """Frame k's events: one ON event per firing pixel of each texture placed at (x, y)."""
    xs, ys = [], []
    for texture, x, y in patches:
        yy, xx = np.nonzero(texture)
        xs.append(xx + x)
        ys.append(yy + y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    t = k * US + 1 + (np.arange(len(x)) * (US - 1)) // max(len(x), 1)
    return EventArray.from_arrays(t, x, y, np.ones(len(x), np.uint8))


def _frame(k: int, patches: list[tuple[np.ndarray, int, int]]) -> TrackingFrame:
    return TrackingFrame(k, _events(k, patches), k * US, (k + 1) * US, W, H)


def test_a_shifted_copy_is_found_shifted() -> None:
    target = _texture(1, 32)
    # 32 px box, template factor 1, 32 template cells: one cell per pixel, so the shift is recovered exactly
    tracker = NccTracker(NccConfig(template_factor=1.0, template_px=32, blur=0, window_influence=0.0))
    tracker.initialize(_frame(0, [(target, 60, 40)]), np.array([60, 40, 32, 32]))
    box, score = tracker.track(_frame(1, [(target, 67, 35)]))
    np.testing.assert_allclose(box, [67, 35, 32, 32], atol=1e-6)
    assert score == pytest.approx(1.0, abs=1e-5)
    box, _ = tracker.track(_frame(2, [(target, 58, 44)]))  # and back, from the new position
    np.testing.assert_allclose(box, [58, 44, 32, 32], atol=1e-6)


def test_follows_its_template_not_the_busier_object() -> None:
    target, other = _texture(2, 24), _texture(3, 24) | _texture(4, 24)  # the other object fires more events
    tracker = NccTracker(NccConfig(template_factor=1.0, template_px=24, blur=0, window_influence=0.0))
    tracker.initialize(_frame(0, [(target, 60, 50), (other, 100, 50)]), np.array([60, 50, 24, 24]))
    # both move by the same distance in opposite directions: only appearance tells them apart
    box, _ = tracker.track(_frame(1, [(target, 66, 50), (other, 84, 50)]))
    np.testing.assert_allclose(box, [66, 50, 24, 24], atol=1e-6)


def test_empty_frames_keep_the_box_and_decay_the_score() -> None:
    target = _texture(5, 32)
    tracker = NccTracker(NccConfig(), empty_score_decay=0.5)
    tracker.initialize(_frame(0, [(target, 60, 40)]), np.array([60, 40, 32, 32]))
    empty = TrackingFrame(1, EventArray.empty(), US, 2 * US, W, H)
    box, score = tracker.track(empty)
    np.testing.assert_allclose(box, [60, 40, 32, 32])
    assert score == 0.5 and tracker.track(empty)[1] == 0.25


def test_rgb_modality_needs_intensity_frames() -> None:
    tracker = NccTracker(NccConfig(modality="rgb"))
    with pytest.raises(DataFormatError, match="intensity frames"):
        tracker.initialize(_frame(0, [(_texture(6, 20), 60, 40)]), np.array([60, 40, 20, 20]))


def test_rgb_template_is_found_in_the_image() -> None:
    rng = np.random.default_rng(7)
    patch = (rng.random((30, 30, 3)) * 255).astype(np.uint8)
    first, second = np.full((H, W, 3), 40, np.uint8), np.full((H, W, 3), 40, np.uint8)
    first[40:70, 50:80], second[45:75, 58:88] = patch, patch
    tracker = NccTracker(NccConfig(modality="rgb", template_factor=1.0, template_px=30, blur=0, window_influence=0.0))
    tracker.initialize(TrackingFrame(0, EventArray.empty(), 0, US, W, H, first), np.array([50, 40, 30, 30]))
    box, _ = tracker.track(TrackingFrame(1, EventArray.empty(), US, 2 * US, W, H, second))
    np.testing.assert_allclose(box, [58, 45, 30, 30], atol=1e-6)


def test_table_row_settings_and_alias() -> None:
    cfg = load_config(None, ["tracking.ncc.modality=rgb", "tracking.ncc.template_px=24"])
    row = NON_LEARNED["ncc"]
    assert row.needs_rgb(cfg) and not NON_LEARNED["event-density"].needs_rgb(cfg)
    assert row.settings(cfg)["tracking.ncc.template_px"] == 24
    assert isinstance(row.build(cfg), NccTracker)
    assert non_learned("baseline") is NON_LEARNED["event-density"] and non_learned("model") is None


def _moving_texture_sequence(name: str, seed: int, frames: int = 12) -> MemorySequence:
    target = _texture(seed, 28)
    boxes, parts = [], []
    for k in range(frames):
        x, y = 40 + 3 * k, 30 + k
        boxes.append([x, y, 28, 28])
        parts.append(_events(k, [(target, x, y)]))
    return MemorySequence(name, W, H, EventArray.concatenate(parts), (np.arange(frames) + 1) * US,
                          np.array(boxes, np.float32), np.zeros(frames, np.uint8))


def test_cli_tracks_and_probes_with_ncc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "ds", [_moving_texture_sequence("a", 8), _moving_texture_sequence("b", 9)])
    assert main(["track", "--tracker", "ncc", "--dataset", str(root), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    boxes = np.loadtxt(tmp_path / "r" / "a.txt", delimiter=",")
    assert len(boxes) == 12 and np.abs(boxes[-1, :2] - [40 + 33, 30 + 11]).max() <= 2
    identity = json.loads((tmp_path / "r" / "track_run.json").read_text())
    assert identity["tracker"] == "ncc" and identity["tracking.ncc.modality"] == "events"
    assert main(["probe", "template", "--tracker", "ncc", "--dataset", str(root), "--out", str(tmp_path / "p"),
                 "--real-results", str(tmp_path / "r"), "--quiet"]) == 0
    probe = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert probe["tracker"] == "ncc" and probe["drop"]["zeroed"] > 30  # no template, nothing to follow
    capsys.readouterr()
