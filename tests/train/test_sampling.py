"""Training-pair sampling: determinism, causality, visibility, crops, targets, dataset weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from trainsynth import make_dataset, tiny_config

from spiketrack.config import DatasetSource
from spiketrack.data.h5seq import open_sequence
from spiketrack.data.inputs import InputSpec
from spiketrack.train.sampling import PairDataset, shared_preload


def test_shapes_for_distillation(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset, **{"data.num_search": 3})
    ds = PairDataset(cfg, inputs=[InputSpec.from_modalities("events+voxel", cfg.data.voxel_bins), InputSpec.event_bins(2)])
    s = ds[5]
    assert s["template"]["events"].shape == (2, 32, 32)
    assert s["template"]["voxel"].shape == (cfg.data.voxel_bins, 32, 32)
    assert s["search"]["events"].shape == (3, 2, 64, 64)
    assert s["template_bins"].shape == (2, 2, 32, 32)
    assert s["search_bins"].shape == (3, 2, 2, 64, 64)
    assert s["boxes"].shape == (3, 4) and s["heatmap"].shape == (3, 1, 4, 4)
    # teacher count frame and student bins come from the same (cropped, thinned, flipped) events
    assert torch.equal(s["search_bins"].sum(dim=1), s["search"]["events"])
    assert torch.equal(s["template_bins"].sum(dim=0), s["template"]["events"])


def test_deterministic_per_index_and_epoch(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset)
    a = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
    b = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
    assert torch.equal(a[3]["search_bins"], b[3]["search_bins"])
    assert torch.equal(a[3]["boxes"], b[3]["boxes"])
    b.set_epoch(1)
    assert not torch.equal(a[3]["boxes"], b[3]["boxes"])


def test_frames_causal_visible_within_gap(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset, **{"data.num_search": 3, "data.max_gap": 4})
    ds = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
    with open_sequence(square_dataset / "seq00.h5") as seq:
        visible = np.flatnonzero(seq.absent == 0)
    for i in range(40):
        template, searches = ds.choose_frames(visible, np.random.default_rng(i))
        assert template in visible and all(f in visible for f in searches)
        assert all(template < f <= template + 4 for f in searches) or searches == [template] * 3
        assert searches == sorted(searches)


def test_unjittered_search_box_is_centred_and_heatmap_peaks_there(square_dataset: Path) -> None:
    cfg = tiny_config(
        square_dataset,
        **{"data.center_jitter": 0.0, "data.scale_jitter": 0.0, "data.flip": False, "data.brightness_jitter": 0.0},
    )
    ds = PairDataset(cfg, inputs=[InputSpec.from_modalities("rgb+events")])
    s = ds[0]
    cx, cy, w, h = s["boxes"][0].tolist()
    assert cx == pytest.approx(0.5) and cy == pytest.approx(0.5)
    assert w * h == pytest.approx(1 / cfg.data.search_factor**2, rel=1e-4)
    assert s["heatmap"][0, 0, 2, 2] == 1.0  # cell floor(0.5 * 4)
    # the target is bright in the RGB crop centre and dark in the corner
    rgb = s["search"]["rgb"][0]
    assert rgb[:, 30:34, 30:34].mean() > 0.7 > rgb[:, :4, :4].mean()


def test_flip_mirrors_box_and_events(square_dataset: Path) -> None:
    base = {"data.center_jitter": 0.0, "data.scale_jitter": 0.0, "data.brightness_jitter": 0.0}
    plain = PairDataset(tiny_config(square_dataset, **base, **{"data.flip": False}), inputs=[InputSpec.from_modalities("events")])
    flipping = PairDataset(tiny_config(square_dataset, **base), inputs=[InputSpec.from_modalities("events")])
    for i in range(20):  # find an index whose flip coin came up heads (same RNG stream otherwise)
        a, b = plain[i], flipping[i]
        if not torch.equal(a["search"]["events"], b["search"]["events"]):
            assert torch.equal(b["search"]["events"], a["search"]["events"].flip(-1))
            assert b["boxes"][0, 0].item() == pytest.approx(1 - a["boxes"][0, 0].item())
            return
    pytest.fail("no flipped sample in 20 draws")


def test_dataset_weights(tmp_path: Path, square_dataset: Path) -> None:
    other = make_dataset(tmp_path / "other", count=1, seed=50)
    cfg = tiny_config(square_dataset)
    cfg.data.datasets[0].weight = 0.0
    cfg.data.datasets.append(DatasetSource(root=str(other), weight=1.0))
    ds = PairDataset(cfg, inputs=[InputSpec.from_modalities("events")])
    assert ds.weights.tolist() == [0.0, 1.0]
    assert {Path(ds[i]["sequence"]).parent for i in range(8)} == {other}
    cfg.data.datasets[0].weight = 1.0
    both = PairDataset(cfg, inputs=[InputSpec.from_modalities("events")])
    assert {Path(both[i]["sequence"]).parent for i in range(30)} == {other, square_dataset}


def test_preloaded_sequences_give_the_same_samples(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset, **{"data.num_search": 2})
    from_files = PairDataset(cfg, inputs=[InputSpec.from_modalities("events+voxel", cfg.data.voxel_bins), InputSpec.event_bins(2)])
    in_memory = PairDataset(cfg, inputs=[InputSpec.from_modalities("events+voxel", cfg.data.voxel_bins), InputSpec.event_bins(2)])
    assert in_memory.preload(max_mb=64) and len(in_memory._memory) == len(from_files.sources[0])
    for i in range(6):
        a, b = from_files[i], in_memory[i]
        assert torch.equal(a["search_bins"], b["search_bins"]) and torch.equal(a["boxes"], b["boxes"])
        assert torch.equal(a["template"]["voxel"], b["template"]["voxel"])
    assert not in_memory._open  # no HDF5 file was opened for sampling
    small = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
    assert not small.preload(max_mb=1e-6) and not small._memory  # over the budget: files are read per sample
    via_config = PairDataset(tiny_config(square_dataset, **{"train.preload_mb": 64}), inputs=[InputSpec.event_bins(2)])
    assert len(via_config._memory) == len(from_files.sources[0])


def test_shared_preload_decodes_each_file_once_within_the_block(square_dataset: Path) -> None:
    cfg = tiny_config(square_dataset, **{"train.preload_mb": 64})
    with shared_preload():
        first = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
        second = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
        assert first._memory and all(second._memory[p] is seq for p, seq in first._memory.items())
        path = next(iter(first._memory))
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # as if rewritten: read again
        third = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])
        assert third._memory[path] is not first._memory[path]
        assert all(third._memory[p] is first._memory[p] for p in first._memory if p != path)
    after = PairDataset(cfg, inputs=[InputSpec.event_bins(2)])  # outside the block: nothing kept
    assert all(after._memory[p] is not seq for p, seq in first._memory.items())
    assert all(torch.equal(second[i]["search_bins"], after[i]["search_bins"]) for i in range(3))  # same samples
