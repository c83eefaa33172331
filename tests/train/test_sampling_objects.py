"""Multi-object and distractor-aware training pairs: any annotated object as the target, distractor-rich search
frames, negative pairs (all-zero heatmap, no box loss), and the OSTrack jitter that moves the target off-centre."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from trainsynth import tiny_config

from spiketrack.config import LossConfig
from spiketrack.data.crop import CropWindow
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.data.inputs import InputSpec
from spiketrack.errors import ConfigError
from spiketrack.train.losses import giou_loss, l1_loss, tracking_losses
from spiketrack.train.sampling import PairDataset

SIZE, FRAMES, US = 96, 12, 10_000
SIZES = ((10, 10), (16, 9))  # object 0 (ON events), object 1 (OFF events)


def _tracks() -> np.ndarray:
    """[2, F, 4]: object 0 drifts right at y=20; object 1 sits far below and comes near object 0 from frame 8."""
    out = np.zeros((2, FRAMES, 4), np.float32)
    for k in range(FRAMES):
        out[0, k] = [10 + 2 * k, 20, *SIZES[0]]
        y1 = 70 if k < 8 else 30
        out[1, k] = [20 + 2 * k, y1, *SIZES[1]]
    return out


def write_multi_object(root: Path) -> Path:
    boxes = _tracks()
    ft = np.arange(1, FRAMES + 1, dtype=np.int64) * US
    parts = []
    for k in range(FRAMES):
        for obj in (0, 1):
            x, y, w, h = (int(v) for v in boxes[obj, k])
            yy, xx = np.mgrid[y : y + h, x : x + w]
            n = xx.size
            t = ft[k] - US + 1 + (np.arange(n) * (US - 1)) // n
            parts.append(EventArray.from_arrays(t, xx.ravel(), yy.ravel(), np.full(n, 1 - obj)))
    ev = EventArray.concatenate(parts)
    ev = ev[np.argsort(ev.t, kind="stable")]
    absent = np.zeros((2, FRAMES), np.uint8)
    write_sequence(root / "mo.h5", name="mo", width=SIZE, height=SIZE, events=ev, frame_times=ft, boxes=boxes[0],
                   absent=absent[0], object_boxes=boxes, object_absent=absent)
    write_split(root, "train", ["mo"])
    return root


@pytest.fixture(scope="module")
def mo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_multi_object(tmp_path_factory.mktemp("multi"))


STILL = {"data.center_jitter": 0.0, "data.scale_jitter": 0.0, "data.flip": "false", "data.brightness_jitter": 0.0}


def _crop_box(obj: int) -> list[float]:
    w, h = SIZES[obj]
    side = 4.0 * np.sqrt(w * h)  # search factor 4
    return [0.5, 0.5, w / side, h / side]


def test_positive_pairs_of_any_object_use_that_objects_boxes(mo_dataset: Path) -> None:
    ds = PairDataset(tiny_config(mo_dataset, **STILL), inputs=[InputSpec.event_bins(2)])
    seen = set()
    for i in range(30):
        s = ds[i]
        obj = s["object"]
        seen.add(obj)
        assert not s["negative"] and torch.equal(s["box_mask"], torch.ones(1))
        np.testing.assert_allclose(s["boxes"][0].numpy(), _crop_box(obj), atol=1e-6)
        assert s["heatmap"].max() == 1.0
        polarity = s["template_bins"].sum(dim=(0, 2, 3))  # [OFF, ON]: object 0 fires ON, object 1 OFF
        assert int(polarity.argmax()) == 1 - obj
    assert seen == {0, 1}


def test_negative_pairs_have_no_target(mo_dataset: Path) -> None:
    ds = PairDataset(tiny_config(mo_dataset, **STILL, **{"data.negative_prob": 1.0, "data.num_search": 2}),
                     inputs=[InputSpec.event_bins(2)])
    tracks = _tracks()
    labelled = 0
    for i in range(20):
        s = ds[i]
        assert s["negative"]
        obj, shown = s["object"], 1 - s["object"]
        # one sequence only: the template shows the other object (the other polarity)
        assert int(s["template_bins"].sum(dim=(0, 2, 3)).argmax()) == obj
        # the search crop is still cut around the real object: all of its events are in the crop
        w, h = SIZES[obj]
        assert float(s["search_bins"][:, :, 1 - obj].sum()) == 2 * w * h
        for j, k in enumerate(s["frames"][1:].tolist()):
            window = CropWindow.around(tracks[obj, k], 4.0)
            box = window.box_to_crop(tracks[shown, k])
            if 0 <= box[0] <= 1 and 0 <= box[1] <= 1:  # the template's object is in the crop: it is the target
                labelled += 1
                assert s["box_mask"][j] == 1 and s["heatmap"][j].max() == 1.0
                np.testing.assert_allclose(s["boxes"][j].numpy(), box, atol=1e-6)
            else:  # nothing the template shows: all-zero heatmap, no box
                assert s["box_mask"][j] == 0 and torch.all(s["heatmap"][j] == 0) and torch.all(s["boxes"][j] == 0)
    assert labelled > 0  # object 1 comes near object 0 from frame 8 (see _tracks)
    half = PairDataset(tiny_config(mo_dataset, **{"data.negative_prob": 0.5}), inputs=[InputSpec.event_bins(2)])
    share = np.mean([bool(half[i]["negative"]) for i in range(60)])
    assert 0.3 < share < 0.7


def test_lookalike_objects_are_never_a_negative_template(tmp_path: Path) -> None:
    root = write_multi_object(tmp_path)
    with h5py.File(root / "mo.h5", "a") as h5:
        h5.attrs["attributes"] = json.dumps(["MO", "LA"])
    write_split(root, "train", ["mo"])
    write_multi_object(tmp_path / "other")  # a second sequence for the negatives to come from
    shutil.copy(tmp_path / "other" / "mo.h5", root / "mo2.h5")
    write_split(root, "train", ["mo", "mo2"])
    ds = PairDataset(tiny_config(root, **STILL, **{"data.negative_prob": 1.0}), inputs=[InputSpec.event_bins(2)])
    for i in range(30):
        s = ds[i]
        if s["sequence"].endswith("mo.h5"):
            # the template is the primary target of mo2 (ON events), never mo's other look-alike object
            assert int(s["template_bins"].sum(dim=(0, 2, 3)).argmax()) == 1


def test_templates_come_from_clean_frames(tmp_path: Path) -> None:
    root = write_multi_object(tmp_path)
    boxes = _tracks()
    boxes[1, :6] = boxes[0, :6] + [3, 2, 0, 0]  # object 1 overlaps object 0 in frames 0-5
    visible = np.ones((2, FRAMES), np.float32)
    visible[0, 9:] = 0.5  # object 0 half hidden from frame 9
    with h5py.File(root / "mo.h5", "a") as h5:
        h5["objects/boxes"][...] = boxes
        h5["boxes"][...] = boxes[0]
        h5.create_dataset("objects/visible", data=visible)
        h5.create_dataset("visible", data=visible[0])
    ds = PairDataset(tiny_config(root, **STILL), inputs=[InputSpec.event_bins(2)])
    assert ds.sources[0][0].templates_of(0).tolist() == [6, 7, 8]
    assert ds.sources[0][0].templates_of(1).tolist() == list(range(6, FRAMES))
    assert {int(ds[i]["frames"][0]) for i in range(40) if ds[i]["object"] == 0} <= {6, 7, 8}
    loose = PairDataset(tiny_config(root, **STILL, **{"data.template_min_visible": 0.0,
                                                      "data.template_max_overlap": 1.0}),
                        inputs=[InputSpec.event_bins(2)])
    assert loose.sources[0][0].templates_of(0).tolist() == list(range(FRAMES))


def test_negative_template_from_another_sequence(square_dataset: Path) -> None:
    ds = PairDataset(tiny_config(square_dataset, **{"data.negative_prob": 1.0}), inputs=[InputSpec.event_bins(2)])
    s = ds[0]
    assert s["negative"] and s["object"] == 0 and torch.all(s["heatmap"] == 0)
    with pytest.raises(ConfigError, match="data.negative_prob"):
        PairDataset(tiny_config(square_dataset, **{"data.negative_prob": 1.5}), inputs=[InputSpec.event_bins(2)])


def test_distractor_rich_search_frames(mo_dataset: Path) -> None:
    cfg = {"data.max_gap": 11}
    plain = PairDataset(tiny_config(mo_dataset, **cfg), inputs=[InputSpec.event_bins(2)])
    rich = PairDataset(tiny_config(mo_dataset, **cfg, **{"data.distractor_prob": 1.0}), inputs=[InputSpec.event_bins(2)])
    from spiketrack.data.h5seq import open_sequence

    with open_sequence(mo_dataset / "mo.h5") as seq:
        near = rich._near_frames(seq, 0)
    assert near.tolist() == [False] * 8 + [True] * 4  # object 1 enters object 0's search crop at frame 8

    def share(ds: PairDataset) -> float:
        hits = [bool(near[int(ds[i]["frames"][1])]) for i in range(40)]
        return float(np.mean(hits))

    assert share(rich) == 1.0 and share(plain) < 0.8


def test_jitter_moves_the_target_off_centre(square_dataset: Path) -> None:
    ds = PairDataset(tiny_config(square_dataset), inputs=[InputSpec.event_bins(2)])
    centres = np.stack([ds[i]["boxes"][0, :2].numpy() for i in range(30)])
    assert np.abs(centres - 0.5).max() > 0.1 and centres.std(axis=0).min() > 0.03
    assert np.all((centres > 0) & (centres < 1))


def test_negative_sample_has_no_box_term() -> None:
    torch.manual_seed(0)
    n, hf = 3, 4
    score = torch.rand(n, 1, hf, hf).clamp(0.05, 0.95).requires_grad_()
    pred = torch.rand(n, 4).clamp(0.1, 0.9).requires_grad_()
    target = torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.4, 0.6, 0.1, 0.1], [0.5, 0.5, 0.3, 0.3]])
    heat = torch.zeros(n, 1, hf, hf)
    heat[0, 0, 2, 2] = heat[2, 0, 2, 2] = 1.0  # sample 1 is negative: all-zero heatmap
    out = {"score_map": score, "pred_boxes": pred}
    w = LossConfig()
    mask = torch.tensor([1.0, 0.0, 1.0])
    terms, _ = tracking_losses(out, heat, target, w, box_mask=mask)
    keep = mask.bool()
    assert terms["giou"].item() == pytest.approx(w.giou.weight * giou_loss(pred[keep], target[keep])[0].item())
    assert terms["l1"].item() == pytest.approx(w.l1.weight * l1_loss(pred[keep], target[keep]).item())
    terms["giou"].add(terms["l1"]).backward()
    assert torch.all(pred.grad[1] == 0) and pred.grad[0].abs().sum() > 0
    # all negative: no box term at all, still a finite graph
    only, _ = tracking_losses(out, heat[1:2].expand(n, 1, hf, hf), target, w, box_mask=torch.zeros(n))
    assert only["giou"].item() == 0 and only["l1"].item() == 0 and torch.isfinite(only["focal"])
    # mask all ones = no mask, bit for bit
    a, _ = tracking_losses(out, heat, target, w, box_mask=torch.ones(n))
    b, _ = tracking_losses(out, heat, target, w)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_steps_with_negative_pairs_are_finite(mo_dataset: Path, tmp_path: Path) -> None:
    from spiketrack.train.trainer import train

    cfg = tiny_config(mo_dataset, **{"data.negative_prob": 0.5, "data.distractor_prob": 0.5,
                                     "train.steps_per_epoch": 2, "train.batch_size": 4})
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.step == 2
    assert result.metrics and all(np.isfinite(float(v)) for v in result.metrics.values())
