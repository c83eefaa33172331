"""Multi-object scenes of the synthetic benchmark: every object annotated exactly, crossings, per-object test
sequences, determinism, and nothing changed when the option is off."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from spiketrack.data import synth_attributes as A
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.h5seq import open_sequence, validate_sequence
from spiketrack.data.synth import SynthOptions, add_synth_arguments, generate_benchmark, render_sequence, run_synth
from spiketrack.data.synth_multi import MultiObjectPlan, draw_plan
from spiketrack.errors import ConfigError

W, H, FPS = 346, 260, 25.0


def _geometry_boxes(seq, layer: int) -> np.ndarray:
    """Boxes of a scene layer straight from the renderer's geometry (full extent clipped to the image)."""
    out = []
    for k in range(len(seq.frame_times)):
        t = seq.frame_times[k] * 1e-6
        cx, cy, w, h = seq.rendered.layers[layer].geometry(t, seq.rendered.camera(t))
        x0, y0 = np.clip(cx - w / 2, 0, W), np.clip(cy - h / 2, 0, H)
        x1, y1 = np.clip(cx + w / 2, 0, W), np.clip(cy + h / 2, 0, H)
        out.append([x0, y0, x1 - x0, y1 - y0])
    return np.asarray(out, np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2, y2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]), np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / np.maximum(a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter, 1e-9)


@pytest.mark.parametrize("lookalike", [False, True])
def test_every_object_is_annotated_by_the_renderers_geometry(lookalike: bool) -> None:
    seq = render_sequence("mo", W, H, 40, 11, SynthOptions(rgb=False), multi=MultiObjectPlan(3, lookalike))
    ob, oa = seq.object_boxes, seq.object_absent
    assert ob.shape == (4, 40, 4) and oa.shape == (4, 40) and ob.dtype == np.float32
    assert np.array_equal(ob[0], seq.boxes) and np.array_equal(oa[0], seq.absent)
    assert seq.object_layers[0] == seq.rendered.target_index
    assert "MO" in seq.attributes and all("MO" in a for a in seq.object_attributes)
    target = seq.rendered.target
    for k, layer in enumerate(seq.object_layers):
        sprite = seq.rendered.layers[layer]
        assert sprite.role == ("target" if k == 0 else "object")
        want = _geometry_boxes(seq, layer)
        present = oa[k] == 0
        np.testing.assert_allclose(ob[k][present], want[present], atol=1e-4)
        assert np.all(ob[k][~present] == 0)
        if k:
            assert 0.75 * 0.99 <= sprite.w0 / target.w0 <= 1.3 * 1.01  # the target's size class
            same_look = sprite.texture.shape == target.texture.shape and np.allclose(
                sprite.texture, target.texture, atol=0.11)
            assert same_look == lookalike
    # the objects are apart in frame 0 and cross or pass near the target later
    first = _iou(ob[1:, 0], np.repeat(ob[:1, 0], 3, axis=0))
    assert np.all(first < 0.3)
    overlap = max(_iou(ob[k], ob[0])[(oa[k] == 0) & (oa[0] == 0)].max(initial=0) for k in range(1, 4))
    assert overlap > 0.1


def test_plan_share_and_counts() -> None:
    plans = [draw_plan(np.random.default_rng(i), 0.5, 0.3) for i in range(400)]
    share = np.mean([p.enabled for p in plans])
    assert 0.4 < share < 0.6
    assert {p.extra for p in plans if p.enabled} == {1, 2, 3}  # 2-4 objects with the target
    assert not any(draw_plan(np.random.default_rng(i), 0.0, 1.0).enabled for i in range(50))


def _read_all(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        out: dict[str, np.ndarray] = {}
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        out["attrs"] = np.array(sorted((k, str(v)) for k, v in h5.attrs.items()))
    return out


def test_benchmark_with_multi_object_scenes_is_deterministic_and_splits_objects(tmp_path: Path) -> None:
    opts = SynthOptions(rgb=False, multi_object=1.0, lookalike_objects=0.0)
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        generate_benchmark(out, 1, 2, seed=5, frames=(12, 12), options=opts, progress=False)
    files = sorted(p.name for p in a.glob("*.h5"))
    assert files == sorted(p.name for p in b.glob("*.h5"))
    for name in files:
        da, db = _read_all(a / name), _read_all(b / name)
        assert da.keys() == db.keys()
        for key in da:
            assert np.array_equal(da[key], db[key]), (name, key)
        assert validate_sequence(a / name) == []
    ds = SequenceDataset(a)
    assert ds.names("train") == ["train_0000"]
    test = ds.names("test")
    primaries = [n for n in test if "_o" not in n]
    assert primaries == ["test_0000", "test_0001"] and len(test) > 2
    for name in test:
        with open_sequence(a / f"{name}.h5") as seq:
            assert "MO" in seq.attributes and seq.num_objects >= 2 and "mo=1/0" in seq.source
            assert seq.absent[0] == 0 and np.all(seq.boxes[0, 2:] > 0)
            if "_o" in name:  # object k of the primary scene is this sequence's target
                primary, k = name.split("_o")
                with open_sequence(a / f"{primary}.h5") as scene:
                    assert np.array_equal(seq.boxes, scene.object_boxes[int(k)])
                    assert np.array_equal(seq.object_boxes[1], scene.object_boxes[0])
                    assert np.array_equal(seq.all_events().t, scene.all_events().t)
    # resuming keeps every file of a finished multi-object job
    again = generate_benchmark(a, 1, 2, seed=5, frames=(12, 12), options=opts, progress=False)
    assert all(r.skipped for r in again) and SequenceDataset(a).names("test") == test


def test_share_zero_leaves_the_single_object_benchmark_unchanged(tmp_path: Path) -> None:
    generate_benchmark(tmp_path, 0, 1, seed=2, frames=(8, 8), options=SynthOptions(rgb=False), progress=False)
    with open_sequence(tmp_path / "test_0000.h5") as seq:
        assert seq.object_boxes is None and "MO" not in seq.attributes and "mo=" not in seq.source
    single = render_sequence("s", W, H, 10, 9, SynthOptions(rgb=False))
    disabled = render_sequence("s", W, H, 10, 9, SynthOptions(rgb=False), multi=MultiObjectPlan())
    assert np.array_equal(single.events.t, disabled.events.t) and np.array_equal(single.boxes, disabled.boxes)
    assert single.object_boxes is None and set(single.attributes) <= set(A.ATTRIBUTE_CODES)


def test_cli_multi_object_option(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_synth_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "d"), "--train", "1", "--test", "0", "--frames", "6",
                              "--multi-object", "1", "--no-rgb"])
    assert run_synth(args) == 0
    with open_sequence(tmp_path / "d" / "train_0000.h5") as seq:
        assert seq.num_objects >= 2
    bad = parser.parse_args(["--out", str(tmp_path / "e"), "--multi-object", "1.5"])
    with pytest.raises(ConfigError, match="--multi-object"):
        run_synth(bad)
