"""Template-dependence probe (docs/tracking.md, "Template-dependence probe"): does a tracker follow its template or
the salient moving thing?

A split is tracked three ways through the ordinary runner (:func:`spiketrack.tracking.runner.track_dataset`), and
each way is scored with the evaluation protocol (:func:`spiketrack.evaluation.evaluate.evaluate_trackers`):

- ``real``: the sequences as they are;
- ``zeroed``: the initialisation frame (frame 0) has no events and, where the sequence has intensity frames, an
  all-zero image, so the template crop's input is all zero;
- ``foreign``: frame 0 shows another sequence's first template instead: the events (and image) of the template
  crop around the *other* sequence's first box, mapped into the template crop around *this* sequence's first
  box (scaled by the ratio of the two crop sides, timestamps mapped linearly onto frame 0's window). The other
  sequence comes from another *scene* (``Sequence.scene``: the synthetic benchmark's per-object test sequences
  ``<scene>_o<k>`` share their scene, whose objects may look alike), drawn with a fixed seed
  (:data:`FOREIGN_SEED`), so the pairing is the same in every run.

Only frame 0 changes, and the tracker still starts from the real first box, so teacher and student go through
their ordinary ``ModelTracker.initialize(frame, box)`` and every later frame is the real one. The drop
``SR(real) - SR(zeroed)`` and ``SR(real) - SR(foreign)`` measures how much the tracker depends on its template:
near 0 means a saliency detector; a tracker that never looks at frame 0 (the event-density baseline) gives
exactly 0. Results: ``<out>/<mode>/`` result folders, ``<out>/probe.json`` and ``<out>/probe.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spiketrack.atomic import atomic_write_text
from spiketrack.config import ExperimentConfig
from spiketrack.data.crop import CropWindow
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.events import EventArray
from spiketrack.data.sequence import Sequence
from spiketrack.errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    from spiketrack.tracking.runner import TrackerLike

MODES = ("real", "zeroed", "foreign")
FOREIGN_SEED = 0  # seed of the foreign-template pairing (fixed: every tracker is probed with the same pairs)
PROBE_JSON, PROBE_MD = "probe.json", "probe.md"


# ------------------------------------------------------------------------------------------------ frame 0 views
def transplant_events(
    events: EventArray, src: CropWindow, dst: CropWindow, src_window: tuple[int, int], dst_window: tuple[int, int],
    width: int, height: int,
) -> EventArray:
    """Events inside ``src`` mapped into ``dst`` (pixel centres scaled by ``dst.side / src.side``, floored) with
    timestamps mapped linearly from ``src_window`` onto ``dst_window`` (``t0 < t <= t1``); those landing outside
    the ``width`` x ``height`` sensor are dropped. Order by time is kept."""
    if len(events) == 0:
        return EventArray.empty()
    scale = dst.side / src.side
    u = (events.x.astype(np.float64) + 0.5 - src.cx) * scale + dst.cx
    v = (events.y.astype(np.float64) + 0.5 - src.cy) * scale + dst.cy
    inside_src = (np.abs(events.x + 0.5 - src.cx) <= src.side / 2) & (np.abs(events.y + 0.5 - src.cy) <= src.side / 2)
    x, y = np.floor(u), np.floor(v)
    keep = inside_src & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    (s0, s1), (d0, d1) = src_window, dst_window
    rate = (d1 - d0) / max(s1 - s0, 1)
    t = np.clip(np.ceil(d0 + (events.t.astype(np.float64) - s0) * rate), d0 + 1, d1).astype(np.int64)
    return EventArray.from_arrays(t[keep], x[keep], y[keep], events.p[keep])


def transplant_image(image: np.ndarray, src: CropWindow, dst: CropWindow, width: int, height: int) -> np.ndarray:
    """A ``[height, width, 3]`` uint8 image, zero except inside ``dst``, which shows ``image``'s ``src`` region
    (nearest neighbour; parts of ``src`` outside ``image`` stay zero)."""
    out = np.zeros((height, width, 3), np.uint8)
    x0, x1 = max(0, int(np.floor(dst.x0))), min(width, int(np.ceil(dst.x0 + dst.side)))
    y0, y1 = max(0, int(np.floor(dst.y0))), min(height, int(np.ceil(dst.y0 + dst.side)))
    if x1 <= x0 or y1 <= y0:
        return out
    scale = src.side / dst.side
    sx = np.floor((np.arange(x0, x1) + 0.5 - dst.cx) * scale + src.cx).astype(np.int64)
    sy = np.floor((np.arange(y0, y1) + 0.5 - dst.cy) * scale + src.cy).astype(np.int64)
    ok_x = (sx >= 0) & (sx < image.shape[1])
    ok_y = (sy >= 0) & (sy < image.shape[0])
    patch = image[np.clip(sy, 0, image.shape[0] - 1)][:, np.clip(sx, 0, image.shape[1] - 1)]
    patch = patch * (ok_y[:, None, None] & ok_x[None, :, None])
    out[y0:y1, x0:x1] = patch
    return out


class ProbedSequence(Sequence):
    """``inner`` with frame 0 replaced (``zeroed`` or ``foreign``); every other frame and all boxes unchanged."""

    def __init__(self, inner: Sequence, mode: str, foreign: Sequence | None = None, template_factor: float = 2.0):
        if mode not in ("zeroed", "foreign"):
            raise ConfigError(f"probe: mode must be 'zeroed' or 'foreign', got {mode!r}")
        if mode == "foreign" and foreign is None:
            raise ConfigError("probe: the foreign mode needs another sequence")
        self.inner, self.mode, self.foreign = inner, mode, foreign
        for key in ("name", "width", "height", "source", "attributes", "frame_times", "boxes", "absent", "scene"):
            setattr(self, key, getattr(inner, key))
        self.path = getattr(inner, "path", None)
        self._frame0 = inner.frame_window(0)
        self._events0 = EventArray.empty()
        self._rgb0: np.ndarray | None = None
        if mode == "foreign":
            self._make_foreign(foreign, template_factor)

    def _make_foreign(self, other: Sequence, factor: float) -> None:
        if self.inner.has_rgb != other.has_rgb:
            raise DataFormatError(getattr(other, "path", other.name), "frames/rgb",
                                  f"foreign template for {self.name}: one sequence has intensity frames, one not")
        src = CropWindow.around(np.asarray(other.boxes[0], np.float64), factor)
        dst = CropWindow.around(np.asarray(self.inner.boxes[0], np.float64), factor)
        window = other.frame_window(0)
        self._events0 = transplant_events(other.events_between(*window), src, dst, window, self._frame0,
                                          self.width, self.height)
        if other.has_rgb:
            self._rgb0 = transplant_image(np.asarray(other.rgb(0)), src, dst, self.width, self.height)

    @property
    def has_rgb(self) -> bool:
        return self.inner.has_rgb

    def events_between(self, t0: int, t1: int) -> EventArray:
        """Inner events outside frame 0's window, plus frame 0's replacement events inside it."""
        f0, f1 = self._frame0
        if t1 <= f0 or t0 >= f1:
            return self.inner.events_between(t0, t1)
        parts = []
        if t0 < f0:
            parts.append(self.inner.events_between(t0, f0))
        ev = self._events0
        parts.append(ev[(ev.t > max(t0, f0)) & (ev.t <= min(t1, f1))] if len(ev) else ev)
        if t1 > f1:
            parts.append(self.inner.events_between(f1, t1))
        return EventArray.concatenate(parts)

    def rgb(self, k: int) -> np.ndarray:
        if k != 0:
            return self.inner.rgb(k)
        if self._rgb0 is not None:
            return self._rgb0
        return np.zeros_like(np.asarray(self.inner.rgb(0)))

    def close(self) -> None:
        self.inner.close()
        if self.foreign is not None:
            self.foreign.close()


@dataclass(frozen=True)
class TemplateView:
    """Picklable frame-0 replacement applied by the runner to every sequence (``mode`` zeroed | foreign).

    ``pairs``: sequence name -> the name of the sequence whose template is shown (foreign mode).
    """

    mode: str
    dataset: str
    pairs: dict[str, str] = field(default_factory=dict)
    template_factor: float = 2.0

    @property
    def label(self) -> str:
        return f"template {self.mode}"

    def __call__(self, seq: Sequence, name: str) -> Sequence:
        foreign = None
        if self.mode == "foreign":
            from spiketrack.data.h5seq import open_sequence

            foreign = open_sequence(SequenceDataset(self.dataset).path(self.pairs[name]))
        return ProbedSequence(seq, self.mode, foreign, self.template_factor)


def foreign_pairs(names: list[str], scenes: dict[str, str] | None = None, seed: int = FOREIGN_SEED) -> dict[str, str]:
    """Each sequence -> a sequence of another scene (``scenes``: name -> scene; default: every sequence its own
    scene), drawn uniformly with ``seed``; needs sequences of at least two scenes."""
    scenes = scenes or {}
    scene = {name: scenes.get(name, name) for name in names}
    if len(set(scene.values())) < 2:
        raise ConfigError(f"probe: the foreign template needs sequences of at least 2 scenes in the split, "
                          f"got {len(names)} sequence(s) of {len(set(scene.values()))} scene(s)")
    rng = np.random.default_rng(seed)
    pairs = {}
    for name in names:
        others = [n for n in names if scene[n] != scene[name]]
        pairs[name] = others[int(rng.integers(len(others)))]
    return pairs


def sequence_scenes(dataset: str | Path, names: list[str]) -> dict[str, str]:
    """name -> scene of every sequence of ``names`` in ``dataset`` (each file's ``scene``, default its name)."""
    ds = SequenceDataset(dataset)
    out = {}
    for name in names:
        with ds.open(name) as seq:
            out[name] = seq.scene
    return out


# ------------------------------------------------------------------------------------------------ results
@dataclass
class ProbeResult:
    """SR/PR/NPR (percent) of every mode, the SR drops, per attribute and per sequence."""

    tracker: str
    dataset: str
    split: str | None
    protocol: str
    modes: dict[str, dict[str, float]]  # mode -> {SR, PR, NPR}
    attributes: dict[str, dict[str, Any]]  # code -> {sequences, SR: {mode: v}, drop: {mode: v}}
    sequences: dict[str, dict[str, float]]  # name -> {mode: SR}
    pairs: dict[str, str]
    results: dict[str, str] = field(default_factory=dict)  # mode -> results folder

    @property
    def drop(self) -> dict[str, float]:
        """``SR(real) - SR(mode)`` for each probed mode (percentage points)."""
        real = self.modes["real"]["SR"]
        return {m: real - v["SR"] for m, v in self.modes.items() if m != "real"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker, "dataset": self.dataset, "split": self.split, "protocol": self.protocol,
            "modes": self.modes, "drop": self.drop, "attributes": self.attributes, "sequences": self.sequences,
            "foreign_pairs": self.pairs, "results": self.results,
        }

    def markdown(self) -> str:
        """A short table: one row for all sequences, one per asked attribute."""
        probed = [m for m in MODES if m in self.modes and m != "real"]
        head = "| sequences | n | SR real | " + " | ".join(f"SR {m} | drop {m}" for m in probed) + " |"
        lines = [f"# Template-dependence probe: {self.tracker}", "",
                 f"Dataset `{self.dataset}` (split {self.split}, protocol {self.protocol}); drop = SR real - SR "
                 "probed, percentage points. A drop near 0 means the tracker ignores its template.", "",
                 head, "|" + "---|" * (3 + 2 * len(probed))]

        def row(label: str, n: int, sr: dict[str, float], drop: dict[str, float]) -> str:
            cells = " | ".join(f"{sr[m]:.1f} | {drop[m]:+.1f}" for m in probed)
            return f"| {label} | {n} | {sr['real']:.1f} | {cells} |"

        lines.append(row("all", len(self.sequences), {m: v["SR"] for m, v in self.modes.items()}, self.drop))
        for code, a in self.attributes.items():
            lines.append(row(code, a["sequences"], a["SR"], a["drop"]))
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """``probe.json`` and ``probe.md`` in ``out``, each written atomically."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        j = atomic_write_text(out / PROBE_JSON, json.dumps(self.to_dict(), indent=1) + "\n")
        m = atomic_write_text(out / PROBE_MD, self.markdown())
        return j, m


def read_probe(path: str | Path) -> dict[str, Any]:
    """A ``probe.json`` (or the folder holding it) as a dict; DataFormatError naming the file when unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / PROBE_JSON
    if not path.is_file():
        raise DataFormatError(path, None, "probe results not found (run `spiketrack probe template`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, None, f"not valid JSON: {exc}") from None
    if "drop" not in data or "modes" not in data:
        raise DataFormatError(path, "drop", "not a probe.json (no 'modes'/'drop')")
    return data


# ------------------------------------------------------------------------------------------------ the probe
def check_probe_arguments(
    cfg: ExperimentConfig, tracker: TrackerLike, dataset: str | Path, split: str | None,
    attributes: tuple[str, ...], protocol: str, real_results: str | Path | None, device: str | None,
) -> None:
    """Refuse, before anything is tracked or written, what would fail after the tracking: an unknown protocol or
    device, a missing checkpoint, an attribute no sequence of the split has, and a ``real_results`` folder that
    is not this tracker's finished results on this split (its ``track_run.json`` must hold the same run identity,
    :mod:`spiketrack.tracking.run_identity`)."""
    from spiketrack.data.h5seq import open_sequence
    from spiketrack.device import resolve_device
    from spiketrack.errors import CheckpointError
    from spiketrack.evaluation.protocols import PROTOCOLS
    from spiketrack.tracking.run_identity import IDENTITY_FILE, run_identity
    from spiketrack.tracking.runner import is_finished
    from spiketrack.tracking.trackers import non_learned

    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol {protocol}: expected one of {sorted(PROTOCOLS)}")
    resolve_device(device)
    if isinstance(tracker, (str, Path)) and non_learned(tracker) is None and not Path(tracker).is_file():
        raise CheckpointError(f"checkpoint not found: {tracker}")
    ds = SequenceDataset(dataset)
    names = ds.names(split)
    if attributes:
        found: set[str] = set()
        for name in names:
            with open_sequence(ds.path(name)) as seq:
                found.update(seq.attributes)
        missing = [code for code in attributes if code not in found]
        if missing:
            raise ConfigError(f"--attribute {missing[0]}: no sequence of {dataset} (split {split}) has the attribute "
                              f"{missing[0]!r} (attributes there: {', '.join(sorted(found)) or 'none'})")
    if real_results is None:
        return
    real = Path(real_results)
    if not real.is_dir():
        raise DataFormatError(real, None, "--real-results: results folder not found")
    ident_path = real / IDENTITY_FILE
    if not ident_path.is_file():
        raise DataFormatError(real, IDENTITY_FILE, "--real-results: not a results folder of `spiketrack track` "
                                                   "(no record of the tracker that made it)")
    try:
        before = json.loads(ident_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(ident_path, None, f"--real-results: unreadable run record ({exc})") from None
    mine = run_identity(cfg, tracker)
    diff = sorted(k for k in before.keys() | mine.keys() if before.get(k) != mine.get(k))
    if diff:
        listed = "; ".join(f"{k}: there {before.get(k)!r}, here {mine.get(k)!r}" for k in diff[:4])
        raise ConfigError(f"--real-results {real}: made by another tracker or with other settings ({listed}"
                          f"{' ...' if len(diff) > 4 else ''}); its SR would be reported as this tracker's")
    unfinished = [n for n in names if not is_finished(real, n)]
    if unfinished:
        raise DataFormatError(real, f"{unfinished[0]}.txt", f"--real-results: {len(unfinished)} of {len(names)} "
                                                            f"sequences of the split have no finished result")


def probe_template(
    cfg: ExperimentConfig,
    tracker: TrackerLike,
    dataset: str | Path,
    split: str | None = "test",
    out: str | Path = "probe",
    *,
    modes: tuple[str, ...] = ("zeroed", "foreign"),
    attributes: tuple[str, ...] = (),
    name: str | None = None,
    workers: int = 1,
    device: str | None = "cpu",
    protocol: str = "eventvot",
    progress: bool = True,
    real_results: str | Path | None = None,
) -> ProbeResult:
    """Track ``split`` of ``dataset`` with the real template and each of ``modes``; score and write the probe.

    ``tracker``: a checkpoint path, a model or a non-learned tracker (as :func:`~spiketrack.tracking.runner.track_dataset`).
    ``attributes``: attribute codes whose sequences are also reported on their own (e.g. ``MO``). Result folders
    ``<out>/<mode>`` resume like any ``spiketrack track`` folder. ``real_results``: an existing results folder of
    the same tracker on the same split (e.g. from ``spiketrack track``) used as the ``real`` mode instead of
    tracking it again.
    """
    from spiketrack.evaluation.evaluate import evaluate_trackers
    from spiketrack.tracking.runner import track_dataset
    from spiketrack.tracking.trackers import non_learned

    bad = [m for m in modes if m not in MODES[1:]]
    if bad or not modes:
        raise ConfigError(f"probe: modes must be among {MODES[1:]}, got {list(modes)}")
    check_probe_arguments(cfg, tracker, dataset, split, attributes, protocol, real_results, device)
    out = Path(out)
    names = SequenceDataset(dataset).names(split)
    pairs = foreign_pairs(names, sequence_scenes(dataset, names)) if "foreign" in modes else {}
    all_modes = ("real", *[m for m in MODES[1:] if m in modes])
    dirs = {m: out / m for m in all_modes}
    if real_results is not None:
        dirs["real"] = Path(real_results)
    for mode in all_modes:
        if mode == "real" and real_results is not None:
            continue
        view = None if mode == "real" else TemplateView(mode, str(dataset), pairs if mode == "foreign" else {},
                                                         cfg.data.template_factor)
        track_dataset(cfg, tracker, dataset, split=split, out_dir=dirs[mode], workers=workers, device=device,
                      progress=progress, view=view)
    ev = evaluate_trackers(dataset, [dirs[m] for m in all_modes], names=list(all_modes), protocol=protocol,
                           split=split)
    scores = {m: ev.trackers[m].overall.scores() for m in all_modes}
    modes_sr = {m: {k: float(v) for k, v in s.items()} for m, s in scores.items()}
    per_attr: dict[str, dict[str, Any]] = {}
    for code in attributes:
        n = sum(code in gt.attributes for gt in ev.ground_truth)
        if n == 0:
            raise ConfigError(f"probe: no sequence of {dataset} (split {split}) has the attribute {code!r}")
        sr = {m: float(ev.trackers[m].attributes[code].SR) for m in all_modes}
        per_attr[code] = {"sequences": n, "SR": sr, "drop": {m: sr["real"] - sr[m] for m in all_modes if m != "real"}}
    seqs = {gt.name: {m: float(ev.trackers[m].sequences[gt.name].scores(ev.protocol)["SR"]) for m in all_modes}
            for gt in ev.ground_truth}
    fixed = non_learned(tracker)
    label = name or (fixed.name if fixed is not None else None)
    label = label or (Path(tracker).stem if isinstance(tracker, (str, Path)) else type(tracker).__name__)
    result = ProbeResult(str(label), str(dataset), split, protocol, modes_sr, per_attr, seqs, pairs,
                         {m: str(d) for m, d in dirs.items()})
    result.write(out)
    return result


__all__ = [
    "MODES",
    "check_probe_arguments",
    "PROBE_JSON",
    "PROBE_MD",
    "ProbeResult",
    "ProbedSequence",
    "TemplateView",
    "foreign_pairs",
    "probe_template",
    "sequence_scenes",
    "read_probe",
    "transplant_events",
    "transplant_image",
]
