"""``spiketrack show``: frame count of the animation, boxes and events at known pixels, the worst frames, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spiketrack.cli import main
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import write_sequence
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.evaluation.show import (
    GT_COLOUR,
    TRACKER_COLOURS,
    ShowOptions,
    Track,
    _font,
    event_image,
    make_layout,
    render_frame,
    show_sequence,
    show_worst,
    worst_frames,
)

W, H, F = 40, 30, 6
GT = np.array([[5, 6, 10, 8]] * F, float)


def _dataset(root: Path, rgb: bool = False, names: tuple[str, ...] = ("seq",)) -> Path:
    """Sequences (default one, 'seq'): an ON event at (1, 2) and an OFF event at (3, 4) in every frame; frame 4
    absent; ``test.txt`` lists them."""
    t = np.repeat(np.arange(1, F + 1) * 1000, 2)
    x = np.tile([1, 3], F)
    y = np.tile([2, 4], F)
    p = np.tile([1, 0], F)
    absent = np.zeros(F, np.uint8)
    absent[4] = 1
    boxes = GT.copy()
    boxes[4] = 0
    frames = np.full((F, H, W, 3), 128, np.uint8) if rgb else None
    for name in names:
        write_sequence(root / f"{name}.h5", name=name, width=W, height=H, events=EventArray.from_arrays(t, x, y, p),
                       frame_times=np.arange(1, F + 1) * 1000, boxes=boxes, absent=absent, rgb=frames)
    (root / "test.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def _results(folder: Path, boxes: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    (folder / "seq.txt").write_text("".join(",".join(f"{v:g}" for v in b) + "\n" for b in boxes))
    return folder


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    good = GT.copy()
    off = GT.copy()
    off[1:, 0] += 5  # 5 px to the right: IoU 5*8 / (2*80 - 40) = 1/3 from frame 1 on
    off[3, 0] += 20  # frame 3: no overlap
    return {"data": _dataset(tmp_path / "data"), "good": _results(tmp_path / "good", good),
            "off": _results(tmp_path / "off", off)}


def test_gif_has_one_frame_per_shown_frame(data: dict[str, Path], tmp_path: Path) -> None:
    res = show_sequence(data["data"], "seq", [data["good"], data["off"]], tmp_path / "out", options=ShowOptions())
    with Image.open(res.gif) as gif:
        assert gif.n_frames == F
    assert res.frames == list(range(F))
    stepped = show_sequence(data["data"], "seq", [data["good"]], tmp_path / "step",
                            options=ShowOptions(start=1, stop=6, step=2))
    with Image.open(stepped.gif) as gif:
        assert gif.n_frames == 3  # frames 1, 3, 5
    assert stepped.frames == [1, 3, 5]


def test_ious_and_worst_frames(data: dict[str, Path], tmp_path: Path) -> None:
    res = show_sequence(data["data"], "seq", [data["good"], data["off"]], tmp_path / "out",
                        names=["A", "B"], options=ShowOptions(worst_frames=3))
    good, off = res.tracks
    assert good.name == "A" and off.name == "B"
    np.testing.assert_allclose(good.ious[[0, 1, 2, 3, 5]], 1.0)
    assert np.isnan(good.ious[4]) and np.isnan(off.ious[4])  # target absent: no IoU
    np.testing.assert_allclose(off.ious[[1, 2, 5]], 40 / 120)
    assert off.ious[3] == 0.0
    # lowest IoU of any tracker, frame 0 and the absent frame 4 left out, ties by frame; listed in frame order
    assert res.worst == [(1, pytest.approx(1 / 3)), (2, pytest.approx(1 / 3)), (3, 0.0)]
    with Image.open(res.sheet) as sheet:
        assert sheet.format == "PNG"


def _track(ious: list[float]) -> Track:
    return Track("t", np.zeros((len(ious), 4)), np.array(ious, float), TRACKER_COLOURS[0])


def test_worst_frames_spread_over_a_long_failure() -> None:
    """40 frames, IoU 0 on frames 10..29: 39 candidates, 4 tiles -> spacing 39 // 8 = 4 frames."""
    ious = [1.0] * 40
    ious[10:30] = [0.0] * 20
    frames = list(range(40))
    absent = np.zeros(40, bool)
    assert worst_frames([_track(ious)], frames, absent, 4) == [(10, 0.0), (14, 0.0), (18, 0.0), (22, 0.0)]
    # only frames no better than the 2nd lowest are spread: 3 (0.0) and 4 (0.1) beat every frame far from 3
    ious = [1.0] * 21
    ious[3], ious[4] = 0.0, 0.1
    assert worst_frames([_track(ious)], list(range(21)), np.zeros(21, bool), 2) == [(3, 0.0), (4, 0.1)]
    # two trackers: a frame counts with its lowest IoU; absent frames and frame 0 never; NaN (no box) is 0
    a, b = _track([0.0, 0.9, 0.2, 0.8, 0.5]), _track([0.0, 0.1, 0.9, float("nan"), 0.6])
    absent = np.array([0, 0, 1, 0, 0], bool)
    assert worst_frames([a, b], range(5), absent, 2) == [(1, 0.1), (3, 0.0)]


def test_box_and_events_at_the_right_pixels() -> None:
    """Known answer at scale 1 and 3: box x, y, w, h covers x .. x+w-1, y .. y+h-1 of the panel."""
    events = EventArray.from_arrays(np.array([1, 2]), np.array([1, 3]), np.array([2, 4]), np.array([1, 0]))
    font = _font(11)
    for scale in (1.0, 3.0):
        layout = make_layout(W, H, 1, rgb=False, scale=scale, font=font)
        img = np.asarray(render_frame(layout, {"events": event_image(events, W, H)}, "t", GT[0],
                                      [("trk", np.array([20.0, 4, 6, 5]), 0.0, TRACKER_COLOURS[0])], font))
        assert img.shape == (layout.header + round(H * scale), round(W * scale), 3)
        ox, oy = layout.panel_origin(0)
        s = int(scale)

        def px(x: int, y: int) -> tuple[int, ...]:
            return tuple(img[oy + y, ox + x])

        # ground truth 5, 6, 10, 8: corners (5, 6) and (14, 13) in sensor pixels, in green; inside stays black
        assert px(5 * s, 6 * s) == GT_COLOUR
        assert px(15 * s - 1, 14 * s - 1) == GT_COLOUR
        assert px(10 * s, 6 * s) == GT_COLOUR and px(5 * s, 10 * s) == GT_COLOUR
        assert px(10 * s, 10 * s) == (0, 0, 0)
        assert px(15 * s, 10 * s) == (0, 0, 0)  # one pixel right of the box
        # tracker box 20, 4, 6, 5 in its colour
        assert px(20 * s, 4 * s) == TRACKER_COLOURS[0]
        assert px(26 * s - 1, 9 * s - 1) == TRACKER_COLOURS[0]
        # ON event at (1, 2) red, OFF event at (3, 4) blue (one event each: half of full brightness)
        assert px(1 * s, 2 * s) == (128, 0, 0)
        assert px(3 * s, 4 * s) == (0, 0, 128)


def test_rgb_panel_beside_the_events(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "rgbdata", rgb=True)
    _results(tmp_path / "r", GT)
    res = show_sequence(root, "seq", [tmp_path / "r"], tmp_path / "out", options=ShowOptions(scale=1))
    with Image.open(res.gif) as gif:
        frame = np.asarray(gif.convert("RGB"))
    layout = make_layout(W, H, 1, rgb=True, scale=1, font=_font(11))
    assert frame.shape[1] == layout.size[0] == 2 * W + 4
    x0, y0 = layout.panel_origin(1)
    np.testing.assert_allclose(frame[y0 + 20, x0 + 30], (128, 128, 128), atol=8)  # grey intensity frame
    # the tracker (here on the ground truth, drawn over it) is on the RGB panel too
    np.testing.assert_allclose(frame[y0 + 6, x0 + 5], TRACKER_COLOURS[0], atol=8)
    no_rgb = show_sequence(root, "seq", [tmp_path / "r"], tmp_path / "out2", options=ShowOptions(scale=1, rgb=False))
    with Image.open(no_rgb.gif) as gif:
        assert gif.size[0] == W


def test_show_worst_renders_each_trackers_worst_sequence(data: dict[str, Path], tmp_path: Path) -> None:
    _dataset(data["data"], names=("seq", "seq2"))  # seq2: the same sequence under another name
    (data["good"] / "seq2.txt").write_text((data["off"] / "seq.txt").read_text())
    (data["off"] / "seq2.txt").write_text((data["off"] / "seq.txt").read_text())
    res = show_worst(data["data"], [data["good"], data["off"]], tmp_path / "out", split="test",
                     options=ShowOptions(worst_frames=0))
    assert res["good"].sequence == "seq2"  # good tracks seq perfectly, seq2 with the off boxes
    assert res["off"].sequence == "seq"  # equal SR on both: the first in split order
    assert res["good"].sheet is None  # --worst-frames 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seq.gif", "seq2.gif"]


def test_bad_inputs_are_one_line_errors(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match="seq9"):
        show_sequence(data["data"], "seq9", [data["good"]], out)
    with pytest.raises(DataFormatError, match="results folder not found"):
        show_sequence(data["data"], "seq", [tmp_path / "nowhere"], out)
    with pytest.raises(DataFormatError, match="dataset folder not found"):
        show_sequence(tmp_path / "nodata", "seq", [data["good"]], out)
    (data["off"] / "seq.txt").write_text("1,2,3,4\n")
    with pytest.raises(DataFormatError, match="1 boxes for a sequence of 6 frames"):
        show_sequence(data["data"], "seq", [data["off"]], out)
    with pytest.raises(ConfigError, match="--frames"):
        show_sequence(data["data"], "seq", [data["good"]], out, options=ShowOptions(start=2, stop=9))
    assert not out.exists()  # nothing written before the arguments are checked


def test_cli_show(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["show", "--dataset", str(data["data"]), "--sequence", "seq", "--results", str(data["good"]),
                 str(data["off"]), "--out", str(out), "--frames", "0:4"]) == 0
    printed = capsys.readouterr().out
    assert "seq.gif (4 frames)" in printed and "seq_worst.png" in printed
    with Image.open(out / "seq.gif") as gif:
        assert gif.n_frames == 4
    for argv, needle in (
        (["--sequence", "nope", "--results", str(data["good"])], "nope"),
        (["--sequence", "seq", "--results", str(tmp_path / "missing")], "results folder not found"),
        (["--sequence", "seq", "--results", str(data["good"]), "--frames", "a:b"], "--frames"),
    ):
        code = main(["show", "--dataset", str(data["data"]), "--out", str(tmp_path / "o2"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
