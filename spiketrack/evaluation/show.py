"""Pictures of tracking: a sequence's events (and RGB frames), its ground truth and each tracker's box, frame by frame.

:func:`show_sequence` renders one sequence of a native dataset with the boxes of one or more results folders
(``spiketrack track --out``) into ``<out>/<sequence>.gif`` (an animated GIF, written by Pillow: no external
encoder) and ``<out>/<sequence>_worst.png`` (a contact sheet of the frames with the lowest IoU).
:func:`show_worst` does that for the worst sequence (lowest SR) of each tracker; the quickstart calls it.

Each frame has a header (sequence, frame, one line per tracker with its colour, name and IoU) above one panel per
view: the frame's events (ON red, OFF blue, both magenta; black where none) and, where the file stores them, the
intensity frames. Every panel shows the ground truth (green, none where the target is absent) and each tracker's
box in its colour with its name. The IoU is that of the box as written against the ground truth (no protocol
repair; '-' where the target is absent). A box ``x, y, w, h`` covers pixels ``x .. x+w-1`` and ``y .. y+h-1``
(0-based, top-left), scaled by the layout's scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spiketrack.atomic import atomic_path, clean_stale_temps
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.events import EventArray
from spiketrack.data.representations import count_frame
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.evaluation.metrics import iou
from spiketrack.evaluation.textfiles import read_boxes
from spiketrack.outputs import prepare_output_dir

GT_COLOUR = (0, 230, 0)
# tracker colours, in --results order (none of them is the ground truth's green or the events' red/blue)
TRACKER_COLOURS = ((255, 220, 0), (0, 230, 255), (255, 140, 0), (255, 255, 255), (255, 90, 255), (170, 140, 255))
BACKGROUND = (0, 0, 0)
HEADER_BACKGROUND = (40, 40, 40)
SHEET_BACKGROUND = (25, 25, 25)
EVENT_SATURATION = 2.0  # events of one polarity at a pixel that give full brightness
PANEL_GAP = 4  # px between the events panel and the RGB panel
MAX_WIDTH = 1024  # auto scale: the largest integer scale (or a reduction) that keeps a frame this wide


@dataclass(frozen=True)
class ShowOptions:
    """What to draw and how: frame range ``[start, stop)`` every ``step`` frames, playback speed, scale, sheet size."""

    start: int = 0
    stop: int | None = None  # None: the last frame
    step: int = 1
    fps: float = 8.0
    scale: float | None = None  # None: auto (integer upscaling of small sensors, reduction of large ones)
    worst_frames: int = 8  # tiles of the contact sheet
    sheet_columns: int = 4
    rgb: bool = True  # an RGB panel where the sequence has intensity frames

    def check(self) -> None:
        """Raise ConfigError naming the option that is out of range."""
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ConfigError(f"--frames: expected START:STOP with 0 <= START < STOP, got {self.start}:{self.stop}")
        if self.step < 1:
            raise ConfigError(f"--step must be >= 1, got {self.step}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ConfigError(f"--fps must be > 0, got {self.fps}")
        if self.scale is not None and not (0 < self.scale <= 16):
            raise ConfigError(f"--scale must be in (0, 16], got {self.scale}")
        if self.worst_frames < 0:
            raise ConfigError(f"--worst-frames must be >= 0, got {self.worst_frames}")
        if self.sheet_columns < 1:
            raise ConfigError(f"sheet_columns must be >= 1, got {self.sheet_columns}")


@dataclass(frozen=True)
class Layout:
    """Where things go in a rendered frame: a header of ``header`` px, then ``panels`` side by side."""

    width: int  # sensor
    height: int
    scale: float
    header: int
    panels: tuple[str, ...]  # 'events', 'rgb'

    @property
    def panel_size(self) -> tuple[int, int]:
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))

    def panel_origin(self, i: int) -> tuple[int, int]:
        """Top-left pixel (x, y) of panel ``i`` in the frame."""
        return i * (self.panel_size[0] + PANEL_GAP), self.header

    @property
    def size(self) -> tuple[int, int]:
        pw, ph = self.panel_size
        n = len(self.panels)
        return n * pw + (n - 1) * PANEL_GAP, self.header + ph

    def box_corners(self, box: np.ndarray) -> tuple[int, int, int, int] | None:
        """Panel pixels (x0, y0, x1, y1), inclusive, of a box x, y, w, h; None for a box that cannot be drawn."""
        x, y, w, h = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            return None
        s = self.scale
        x0, y0 = round(x * s), round(y * s)
        return x0, y0, max(x0, round((x + w) * s) - 1), max(y0, round((y + h) * s) - 1)


@dataclass
class Track:
    """One tracker's boxes on the shown sequence: ``boxes`` [F, 4] and the per-frame ``ious`` [F] (NaN: none)."""

    name: str
    boxes: np.ndarray
    ious: np.ndarray
    colour: tuple[int, int, int]


@dataclass
class ShowResult:
    """What :func:`show_sequence` wrote: the animation, the contact sheet (None when no frame qualifies), the
    frames shown, and the worst frames with their lowest IoU over the trackers."""

    sequence: str
    gif: Path
    sheet: Path | None
    frames: list[int]
    tracks: list[Track]
    worst: list[tuple[int, float]] = field(default_factory=list)


def _font(size: int):  # noqa: ANN202 - PIL font object
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def line_height(font) -> int:  # noqa: ANN001
    left, top, right, bottom = font.getbbox("Ag|")
    return int(bottom - min(top, 0)) + 3


def make_layout(width: int, height: int, trackers: int, rgb: bool, scale: float | None, font) -> Layout:  # noqa: ANN001
    """The layout of a sequence's frames: header lines (title + one per tracker), panels, scale."""
    panels = ("events", "rgb") if rgb else ("events",)
    if scale is None:
        natural = len(panels) * width + (len(panels) - 1) * PANEL_GAP
        scale = float(max(1, MAX_WIDTH // natural)) if natural <= MAX_WIDTH else MAX_WIDTH / natural
    return Layout(width, height, float(scale), (1 + trackers) * line_height(font) + 4, panels)


def event_image(events: EventArray, width: int, height: int) -> np.ndarray:
    """uint8 [H, W, 3]: ON events in red, OFF in blue (full brightness at EVENT_SATURATION events), black elsewhere."""
    counts = count_frame(events, height, width).numpy()  # [2, H, W]: 0 OFF, 1 ON
    level = np.clip(counts / EVENT_SATURATION, 0.0, 1.0) * 255.0
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = level[1].round().astype(np.uint8)
    img[..., 2] = level[0].round().astype(np.uint8)
    return img


def _fmt_iou(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.2f}"


def render_frame(
    layout: Layout,
    views: dict[str, np.ndarray],
    title: str,
    gt_box: np.ndarray | None,
    boxes: SequenceABC[tuple[str, np.ndarray, float, tuple[int, int, int]]],
    font,  # noqa: ANN001
):  # noqa: ANN201 - PIL.Image.Image
    """One frame as an RGB PIL image.

    ``views``: uint8 [H, W, 3] per panel name of ``layout``; ``gt_box`` x, y, w, h or None (absent);
    ``boxes``: (name, box, IoU, colour) per tracker, drawn over the ground truth in this order.
    """
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, layout.size[0] - 1, layout.header - 1], fill=HEADER_BACKGROUND)
    lh = line_height(font)
    draw.text((4, 2), title, fill=(230, 230, 230), font=font)
    swatch = max(4, lh - 6)
    for i, (name, _, value, colour) in enumerate(boxes):
        y = 2 + (i + 1) * lh
        draw.rectangle([4, y + 2, 4 + swatch, y + 2 + swatch], fill=colour)
        draw.text((10 + swatch, y), f"{name}  IoU {_fmt_iou(value)}", fill=colour, font=font)
    pw, ph = layout.panel_size
    line = max(1, round(layout.scale))
    for i, panel_name in enumerate(layout.panels):
        resample = Image.Resampling.NEAREST if panel_name == "events" else Image.Resampling.BILINEAR
        panel = Image.fromarray(views[panel_name]).resize((pw, ph), resample)
        pdraw = ImageDraw.Draw(panel)
        drawn = [("", gt_box, GT_COLOUR)] if gt_box is not None else []
        drawn += [(name, box, colour) for name, box, _, colour in boxes]
        labels: list[tuple[int, int, int, int]] = []  # text boxes already placed on this panel
        for name, box, colour in drawn:
            corners = layout.box_corners(box)
            if corners is None:
                continue
            pdraw.rectangle(corners, outline=colour, width=line)
            if name:
                xy = _label_position(corners, name, font, lh, line, (pw, ph), labels)
                pdraw.text(xy, name, fill=colour, font=font)
        canvas.paste(panel, layout.panel_origin(i))
    return canvas


def _label_position(
    corners: tuple[int, int, int, int], text: str, font, lh: int, line: int,  # noqa: ANN001
    panel: tuple[int, int], taken: list[tuple[int, int, int, int]],
) -> tuple[int, int]:
    """Where a tracker's name goes: above its box, else below it, else inside its top edge, else stacked higher,
    the first place inside the panel that no earlier name covers (the place is added to ``taken``)."""
    x0, y0, _, y1 = corners
    tw = int(font.getlength(text)) if hasattr(font, "getlength") else 6 * len(text)
    x = min(max(0, x0 + 1), max(0, panel[0] - tw))
    candidates = [y0 - lh, y1 + line + 1, y0 + line + 1] + [y0 - lh * (j + 2) for j in range(len(taken) + 1)]
    inside = [y for y in candidates if 0 <= y <= panel[1] - lh] or [max(0, min(y0, panel[1] - lh))]
    for y in inside:
        rect = (x, y, x + tw, y + lh - 1)
        if not any(rect[0] <= t[2] and t[0] <= rect[2] and rect[1] <= t[3] and t[1] <= rect[3] for t in taken):
            break
    else:
        y = inside[0]
        rect = (x, y, x + tw, y + lh - 1)
    taken.append(rect)
    return x, y


def _results_of(results: SequenceABC[str | Path], names: SequenceABC[str] | None) -> tuple[list[Path], list[str]]:
    from spiketrack.evaluation.evaluate import _tracker_names

    dirs = [Path(r) for r in results]
    if not dirs:
        raise ConfigError("show: give at least one --results folder")
    if len(dirs) > len(TRACKER_COLOURS):
        raise ConfigError(f"show: at most {len(TRACKER_COLOURS)} results folders, got {len(dirs)}")
    for d in dirs:
        if not d.is_dir():
            raise DataFormatError(d, None, "results folder not found")
    return dirs, _tracker_names(dirs, names)


def _read_track(path: Path, frames: int) -> np.ndarray:
    """A result file's boxes [frames, 4] (extra lines are ignored, as both protocols truncate)."""
    if not path.is_file():
        raise DataFormatError(path, None, "result file not found")
    boxes = read_boxes(path)
    if len(boxes) < frames:
        raise DataFormatError(path, None, f"{len(boxes)} boxes for a sequence of {frames} frames")
    return boxes[:frames]


def _dataset(dataset: str | Path, sequences: SequenceABC[str]) -> SequenceDataset:
    ds = SequenceDataset(dataset)
    for name in sequences:
        if not ds.path(name).is_file():
            raise DataFormatError(ds.path(name), None, f"sequence {name!r} not found in the dataset")
    return ds


def worst_frames(tracks: SequenceABC[Track], frames: SequenceABC[int], absent: np.ndarray, count: int
                 ) -> list[tuple[int, float]]:
    """``count`` shown frames with the lowest IoU of any tracker, as (frame, IoU) in frame order.

    Frame 0 (every tracker starts from the ground truth) and frames where the target is absent are left out; no
    box counts as IoU 0. Frames are taken lowest IoU first (ties: earlier frame). Among the frames no better than
    the ``count``-th lowest IoU, each taken frame is at least ``spacing = max(1, candidates // (2 * count))``
    frames from those taken before, so that one long failure (many frames at IoU 0) does not fill the sheet with
    near-identical frames; when too few are that far apart, the next lowest frames fill the rest.
    """
    scored = []
    for k in frames:
        if k == 0 or absent[k]:
            continue
        values = [float(t.ious[k]) if math.isfinite(t.ious[k]) else 0.0 for t in tracks]
        scored.append((min(values), k))
    if count <= 0 or not scored:
        return []
    scored.sort()
    spacing = max(1, len(scored) // (2 * count))
    worst = scored[min(count, len(scored)) - 1][0]
    taken: list[tuple[float, int]] = []
    for v, k in scored:
        if v <= worst and len(taken) < count and all(abs(k - j) >= spacing for _, j in taken):
            taken.append((v, k))
    for v, k in scored:  # too few frames far apart: the rest in IoU order
        if len(taken) < count and (v, k) not in taken:
            taken.append((v, k))
    return [(k, v) for v, k in sorted(taken, key=lambda item: item[1])]


def contact_sheet(tiles: list, columns: int):  # noqa: ANN001, ANN201 - PIL images
    """Tiles (PIL images of one size) in a grid of ``columns``, 4 px apart."""
    from PIL import Image

    w, h = tiles[0].size
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (cols * w + (cols + 1) * 4, rows * h + (rows + 1) * 4), SHEET_BACKGROUND)
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (4 + (i % cols) * (w + 4), 4 + (i // cols) * (h + 4)))
    return sheet


def show_sequence(
    dataset: str | Path,
    sequence: str,
    results: SequenceABC[str | Path],
    out_dir: str | Path,
    names: SequenceABC[str] | None = None,
    options: ShowOptions = ShowOptions(),
) -> ShowResult:
    """Render ``sequence`` of ``dataset`` with the boxes of every results folder: ``<out_dir>/<sequence>.gif`` and
    ``<out_dir>/<sequence>_worst.png``. Arguments are checked before anything is rendered or written."""
    options.check()
    dirs, labels = _results_of(results, names)
    ds = _dataset(dataset, [sequence])
    with ds.open(sequence) as seq:
        n = seq.num_frames
        stop = n if options.stop is None else options.stop
        if options.start >= n or stop > n:
            raise ConfigError(f"--frames {options.start}:{stop}: {sequence} has frames 0:{n}")
        gt = np.asarray(seq.boxes, dtype=np.float64).reshape(-1, 4)
        absent = np.asarray(seq.absent).astype(bool)
        tracks = []
        for i, (label, folder) in enumerate(zip(labels, dirs)):
            boxes = _read_track(folder / f"{sequence}.txt", n)
            values = iou(boxes, gt)
            values[absent | (gt[:, 2] <= 0) | (gt[:, 3] <= 0)] = np.nan
            tracks.append(Track(label, boxes, values, TRACKER_COLOURS[i]))
        out = prepare_output_dir(out_dir, "show folder")
        clean_stale_temps(out)
        font = _font(11)
        layout = make_layout(seq.width, seq.height, len(tracks), options.rgb and seq.has_rgb, options.scale, font)
        shown = list(range(options.start, stop, options.step))
        rendered = {}
        for k in shown:
            views = {"events": event_image(seq.frame_events(k), seq.width, seq.height)}
            if "rgb" in layout.panels:
                views["rgb"] = np.asarray(seq.rgb(k), dtype=np.uint8)
            title = f"{sequence}  frame {k} / {n - 1}" + ("  (target absent)" if absent[k] else "")
            rendered[k] = render_frame(
                layout, views, title, None if absent[k] else gt[k],
                [(t.name, t.boxes[k], float(t.ious[k]), t.colour) for t in tracks], font)
    gif = out / f"{sequence}.gif"
    frames = [rendered[k] for k in shown]
    with atomic_path(gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=round(1000.0 / options.fps), loop=0)
    worst = worst_frames(tracks, shown, absent, options.worst_frames)
    sheet = None
    if worst:
        sheet = out / f"{sequence}_worst.png"
        with atomic_path(sheet) as tmp:
            contact_sheet([rendered[k] for k, _ in worst], options.sheet_columns).save(tmp, format="PNG")
    return ShowResult(sequence, gif, sheet, shown, tracks, worst)


def worst_sequences(
    dataset: str | Path,
    results: SequenceABC[str | Path],
    names: SequenceABC[str] | None = None,
    split: str | None = None,
    protocol: str = "eventvot",
) -> dict[str, str]:
    """Tracker name -> its sequence with the lowest SR on ``split`` (ties: the first in split order)."""
    from spiketrack.evaluation.evaluate import evaluate_trackers

    dirs, labels = _results_of(results, names)
    ev = evaluate_trackers(dataset, dirs, names=labels, protocol=protocol, split=split)
    out = {}
    for label in labels:
        per_seq = ev.trackers[label].sequences
        scores = [(per_seq[gt.name].scores(ev.protocol)["SR"], i, gt.name) for i, gt in enumerate(ev.ground_truth)]
        out[label] = min(scores)[2]
    return out


def show_worst(
    dataset: str | Path,
    results: SequenceABC[str | Path],
    out_dir: str | Path,
    names: SequenceABC[str] | None = None,
    split: str | None = None,
    protocol: str = "eventvot",
    options: ShowOptions = ShowOptions(),
) -> dict[str, ShowResult]:
    """The worst sequence (lowest SR) of each tracker, rendered with every tracker's boxes by
    :func:`show_sequence`; a sequence that is the worst of several trackers is rendered once."""
    options.check()
    worst = worst_sequences(dataset, results, names, split, protocol)
    done: dict[str, ShowResult] = {}
    for sequence in dict.fromkeys(worst.values()):
        done[sequence] = show_sequence(dataset, sequence, results, out_dir, names, options)
    return {label: done[sequence] for label, sequence in worst.items()}


__all__ = [
    "Layout",
    "ShowOptions",
    "ShowResult",
    "Track",
    "contact_sheet",
    "event_image",
    "make_layout",
    "render_frame",
    "show_sequence",
    "show_worst",
    "worst_frames",
    "worst_sequences",
]
