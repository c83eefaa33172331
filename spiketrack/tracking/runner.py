"""Dataset runner: track every sequence of a split and write result files (docs/tracking.md, "Tracking a dataset").

For each sequence ``<out>/<name>.txt`` (``x,y,w,h`` per frame, frame 0 = the given first box) and
``<out>/<name>_time.txt`` (seconds per frame: data loading + representation + model + post-processing)
are written atomically (temporary name, then rename; the box file last), so a sequence whose box and time
files both exist with one line per frame is finished and is skipped when the run is started again.
A results folder records what made it (``track_run.json``, :mod:`spiketrack.tracking.run_identity`) and is
never resumed with another tracker or other settings. A meter factory (``meter``, the protocol of
:mod:`spiketrack.tracking.meter`; ``spiketrack track --energy`` passes the energy meter's) adds
``<name>_energy.json``: the meter's summary of every model call of the sequence (``spiketrack report`` reads a
results folder of these). :func:`run_sequence` is the one place where a sequence is tracked with its meter.

Sequences run in parallel worker processes (``workers`` > 1, CPU only, one torch thread each); each worker
builds its tracker once. Per-stage seconds are summed over the run so the slowest stage is known.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spiketrack.atomic import atomic_write_text, clean_stale_temps
from spiketrack.config import ExperimentConfig
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.sequence import Sequence
from spiketrack.device import resolve_device
from spiketrack.errors import CheckpointError, ConfigError, DataFormatError
from spiketrack.models import input_spec
from spiketrack.models.checkpoint import load_model
from spiketrack.outputs import prepare_output_dir
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.meter import MeterFactory, SequenceMeter
from spiketrack.tracking.run_identity import claim_results_dir, released_on_failure, run_identity
from spiketrack.tracking.timing import STAGES, StageTimer
from spiketrack.tracking.tracker import ModelTracker, Tracker
from spiketrack.tracking.trackers import NonLearnedTracker, non_learned
from spiketrack.tracking.ttt import check_ttt_config, check_ttt_frames
from spiketrack.workers import bound_initializer


# ------------------------------------------------------------------------------------------------ results
def result_paths(out_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """``<name>.txt``, ``<name>_time.txt`` and ``<name>_energy.json`` in ``out_dir``."""
    return out_dir / f"{name}.txt", out_dir / f"{name}_time.txt", out_dir / f"{name}_energy.json"


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def is_finished(out_dir: Path, name: str, energy: bool = False) -> bool:
    """Both result files exist with the same, non-zero number of lines (and the energy file when asked)."""
    boxes, times, energy_path = result_paths(out_dir, name)
    if not (boxes.is_file() and times.is_file()) or (energy and not energy_path.is_file()):
        return False
    n = _count_lines(boxes)
    return n > 0 and n == _count_lines(times)


def write_results(
    out_dir: Path, name: str, boxes: np.ndarray, times: np.ndarray, energy: dict[str, Any] | None = None
) -> None:
    """Write the energy and time files, then the box file (its presence marks the sequence finished)."""
    box_path, time_path, energy_path = result_paths(out_dir, name)
    if energy is not None:
        atomic_write_text(energy_path, json.dumps(energy, indent=1))
    atomic_write_text(time_path, "".join(f"{t:.6f}\n" for t in times))
    atomic_write_text(box_path, "".join(f"{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f}\n" for b in boxes))


# ------------------------------------------------------------------------------------------------ one sequence
@dataclass
class SequenceResult:
    """Boxes [F, 4], seconds per frame [F] and per-stage seconds of one tracked sequence."""

    name: str
    boxes: np.ndarray
    times: np.ndarray
    stages: dict[str, float]
    scores: np.ndarray
    energy: dict[str, Any] | None = None


def _where(seq: Sequence) -> str:
    """The sequence's file where it has one (errors name it), else its name."""
    return str(getattr(seq, "path", None) or seq.source or seq.name)


def first_box(seq: Sequence) -> np.ndarray:
    """The ground-truth box of frame 0, which initialises the tracker (must be visible)."""
    box = np.asarray(seq.boxes[0], dtype=np.float64)
    if seq.absent[0] or not (np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0):
        raise DataFormatError(_where(seq), "boxes[0]", f"first frame's box {box.tolist()} is not a visible box")
    if box[0] >= seq.width or box[1] >= seq.height or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
        raise DataFormatError(
            _where(seq), "boxes[0]",
            f"first frame's box {box.tolist()} lies outside the {seq.width}x{seq.height} image; expected a visible box",
        )
    return box


def track_sequence(
    seq: Sequence, tracker: Tracker, timer: StageTimer | None = None, needs_rgb: bool = False
) -> SequenceResult:
    """Run ``tracker`` over every frame of ``seq``: frame 0 initialises with the ground-truth box."""
    timer = timer or getattr(tracker, "timer", None) or StageTimer()
    self_timed = getattr(tracker, "timer", None) is timer
    if needs_rgb and not seq.has_rgb:
        raise ConfigError(
            f"{_where(seq)}: the model uses 'rgb' (model.modalities) but the sequence has no intensity frames"
        )
    n = seq.num_frames
    boxes = np.zeros((n, 4))
    times = np.zeros(n)
    scores = np.zeros(n)
    try:
        _track_frames(seq, tracker, timer, self_timed, needs_rgb, boxes, times, scores)
    finally:
        finish = getattr(tracker, "finish", None)
        if finish is not None:
            finish()  # per-sequence state the tracker put into a shared model (test-time adapters) goes
    return SequenceResult(seq.name, boxes, times, dict(timer.seconds), scores)


def _track_frames(
    seq: Sequence, tracker: Tracker, timer: StageTimer, self_timed: bool, needs_rgb: bool,
    boxes: np.ndarray, times: np.ndarray, scores: np.ndarray,
) -> None:
    """Fill ``boxes``, ``times`` and ``scores`` frame by frame (frame 0 initialises with the ground-truth box)."""
    box0 = first_box(seq)
    for k in range(seq.num_frames):
        start = time.perf_counter()
        with timer.stage("data"):
            t0, t1 = seq.frame_window(k)
            events = seq.events_between(t0, t1)
            rgb = seq.rgb(k) if needs_rgb else None
        frame = TrackingFrame(k, events, t0, t1, seq.width, seq.height, rgb)
        with nullcontext() if self_timed else timer.stage("model"):
            if k == 0:
                tracker.initialize(frame, box0)
                boxes[0], scores[0] = box0, 1.0
            else:
                box, score = tracker.track(frame)
                boxes[k], scores[k] = box, score
        times[k] = time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ trackers
@dataclass
class TrackerSource:
    """Everything a (worker) process needs to build its tracker; picklable.

    ``fixed``: a non-learned tracker (:data:`~spiketrack.tracking.trackers.NON_LEARNED`); otherwise a model tracker
    around ``model`` or the weights of ``checkpoint``.
    """

    cfg: ExperimentConfig
    fixed: NonLearnedTracker | None = None
    checkpoint: str | None = None
    model: nn.Module | None = None
    device: str = "cpu"
    meter: MeterFactory | None = None  # per-sequence meter (model trackers only)
    _model_cache: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def has_model(self) -> bool:
        return self.fixed is None

    def needs_rgb(self) -> bool:
        return self.fixed.needs_rgb(self.cfg) if self.fixed is not None else input_spec(self.cfg).needs_rgb

    def get_model(self) -> nn.Module:
        if self._model_cache is None:
            if self.model is not None:
                self._model_cache = self.model
            elif self.checkpoint is not None:
                self._model_cache = load_model(self.cfg, self.checkpoint, self.device)
            else:
                raise CheckpointError("a model tracker needs --checkpoint (or use a non-learned --tracker)")
        return self._model_cache

    def build(self, timer: StageTimer, meter: SequenceMeter | None = None) -> Tracker:
        """A fresh tracker for one sequence (the model itself is built once per process)."""
        if self.fixed is not None:
            return self.fixed.build(self.cfg)
        return ModelTracker(self.get_model(), self.cfg, device=self.device, meter=meter, timer=timer)

    def make_meter(self) -> SequenceMeter | None:
        """A fresh meter for one sequence (None without a meter factory, and for a non-learned tracker)."""
        if self.meter is None or self.fixed is not None:
            return None
        return self.meter(self.get_model(), self.cfg)


def run_sequence(source: TrackerSource, seq: Sequence) -> SequenceResult:
    """Track ``seq`` with a fresh tracker (and meter) of ``source``; ``energy`` holds the meter's summary."""
    timer = StageTimer(source.device)
    meter = source.make_meter()
    tracker = source.build(timer, meter)
    result = track_sequence(seq, tracker, timer, needs_rgb=source.needs_rgb())
    if meter is not None:
        result.energy = meter.summary(frames=len(result.times))
    return result


SequenceView = Callable[[Sequence, str], Sequence]  # (opened sequence, its name) -> the sequence to track


def run_one(source: TrackerSource, path: Path, out_dir: Path, view: SequenceView | None = None) -> SequenceResult:
    """Track the sequence file ``path`` (through ``view`` when given) and write its result files."""
    from spiketrack.data.h5seq import open_sequence

    seq = open_sequence(path)
    if view is not None:
        try:
            seq = view(seq, path.stem)
        except BaseException:
            seq.close()
            raise
    with seq:
        result = run_sequence(source, seq)
    result.name = path.stem  # results are named as the dataset lists the sequence
    write_results(out_dir, result.name, result.boxes, result.times, result.energy)
    result.boxes = result.boxes[:0]  # only the summary travels back to the main process
    return result


_WORKER_SOURCE: TrackerSource | None = None
_WORKER_VIEW: SequenceView | None = None


def _init_worker(source: TrackerSource, view: SequenceView | None = None) -> None:
    global _WORKER_SOURCE, _WORKER_VIEW
    torch.set_num_threads(1)
    _WORKER_SOURCE, _WORKER_VIEW = source, view


def _worker_run(path: str, out_dir: str) -> SequenceResult:
    assert _WORKER_SOURCE is not None
    return run_one(_WORKER_SOURCE, Path(path), Path(out_dir), _WORKER_VIEW)


# ------------------------------------------------------------------------------------------------ dataset
@dataclass
class RunSummary:
    """What a run did: sequences tracked/skipped, frames, tracking seconds, frames/s, per-stage seconds."""

    tracked: list[str]
    skipped: list[str]
    frames: int
    seconds: float  # sum of per-frame times
    wall_seconds: float
    stages: dict[str, float]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def slowest_stage(self) -> str:
        return max(self.stages, key=lambda s: self.stages[s]) if self.stages else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracked": self.tracked,
            "skipped": self.skipped,
            "frames": self.frames,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "fps": self.fps,
            "stages": self.stages,
            "slowest_stage": self.slowest_stage,
        }


def _default_start_method() -> str:
    """'fork' (workers start instantly, nothing re-imported) where the platform has it and CUDA is untouched.

    Workers set one torch thread, as PyTorch's own DataLoader workers do after forking.
    """
    forkable = "fork" in mp.get_all_start_methods() and not torch.cuda.is_initialized()
    return "fork" if forkable else "spawn"


TrackerLike = str | Path | nn.Module | NonLearnedTracker  # a checkpoint, a model or a non-learned tracker (or its name)


def _source_for(cfg: ExperimentConfig, tracker: TrackerLike, device: str, meter: MeterFactory | None) -> TrackerSource:
    if isinstance(tracker, nn.Module):
        return TrackerSource(cfg, model=tracker, device=device, meter=meter)
    fixed = non_learned(tracker)
    if fixed is not None:
        return TrackerSource(cfg, fixed, device="cpu")
    return TrackerSource(cfg, checkpoint=str(tracker), device=device, meter=meter)


def track_dataset(
    cfg: ExperimentConfig,
    tracker: TrackerLike,
    dataset_dir: str | Path,
    split: str | None = "test",
    out_dir: str | Path = "results",
    workers: int = 1,
    device: str | None = "cpu",
    meter: MeterFactory | None = None,
    progress: bool = True,
    on_result: Callable[[SequenceResult], None] | None = None,
    start_method: str | None = None,
    view: SequenceView | None = None,
) -> RunSummary:
    """Track every sequence of ``split`` (None: every file) of ``dataset_dir`` into ``out_dir``.

    ``tracker`` is a checkpoint path, a model (``nn.Module`` honouring the model interface) or a non-learned tracker
    (:data:`~spiketrack.tracking.trackers.NON_LEARNED`, or its name: ``'event-density'``, ``'ncc'``). ``meter``
    (model, cfg -> meter) counts every model call of a sequence into ``<name>_energy.json`` (a non-learned tracker
    runs no model and gets none). Finished sequences are
    skipped. ``workers`` > 1 runs sequences in parallel processes on CPU (on CUDA one process is used);
    ``start_method`` overrides the multiprocessing start method (default: fork where available, as PyTorch's
    DataLoader, else spawn).
    ``view`` (picklable, with a ``label``) replaces each opened sequence by a view of it, e.g. the
    template-dependence probe's frame-0 replacement (:mod:`spiketrack.evaluation.probe`); the label is part of
    the results folder's identity.
    """
    start = time.perf_counter()
    device = resolve_device(device)
    dataset = SequenceDataset(dataset_dir)
    names = dataset.names(split)
    if cfg.tracking.ttt.enabled and non_learned(tracker) is None:  # refused now, not after some sequences
        check_ttt_config(cfg.tracking.ttt)
        lengths = {}
        for n in names:
            with dataset.open(n) as seq:
                lengths[n] = seq.num_frames
        check_ttt_frames(cfg.tracking.ttt, lengths)
    made = not Path(out_dir).exists()
    out = prepare_output_dir(out_dir, "results folder")
    clean_stale_temps(out)  # temporary files of a killed run
    identity = run_identity(cfg, tracker)
    if view is not None:
        identity["sequence view"] = str(getattr(view, "label", type(view).__name__))
    claimed = claim_results_dir(out, identity)
    source = _source_for(cfg, tracker, device, meter)
    todo = [n for n in names if not is_finished(out, n, energy=source.meter is not None)]
    skipped = [n for n in names if n not in set(todo)]
    workers = max(1, min(int(workers), len(todo) or 1))
    if device != "cpu":
        workers = 1
    total = StageTimer()
    results: list[SequenceResult] = []

    def collect(res: SequenceResult, bar: tqdm) -> None:
        results.append(res)
        total.merge(res.stages)
        bar.update(1)
        frames = sum(len(r.times) for r in results)
        secs = sum(float(r.times.sum()) for r in results)
        bar.set_postfix(fps=f"{frames / secs:.1f}" if secs > 0 else "-")
        if on_result is not None:
            on_result(res)

    bar_ctx = tqdm(total=len(todo), unit="seq", desc="track", disable=not progress or not todo)
    with released_on_failure(out, claimed, made), bar_ctx as bar:
        if workers == 1:
            if todo and source.has_model:
                source.get_model()  # load once, before the first sequence's clock starts
            for name in todo:
                collect(run_one(source, dataset.path(name), out, view), bar)
        else:
            ctx = mp.get_context(start_method or _default_start_method())
            pool = ProcessPoolExecutor(  # workers die with this process (spiketrack.workers)
                workers, mp_context=ctx, initializer=bound_initializer, initargs=(os.getpid(), _init_worker, source, view)
            )
            try:
                pending = {pool.submit(_worker_run, str(dataset.path(n)), str(out)) for n in todo}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        collect(fut.result(), bar)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    stages = {s: total.seconds.get(s, 0.0) for s in STAGES}
    return RunSummary(
        tracked=[r.name for r in results],
        skipped=skipped,
        frames=sum(len(r.times) for r in results),
        seconds=float(sum(r.times.sum() for r in results)),
        wall_seconds=time.perf_counter() - start,
        stages=stages,
    )


__all__ = [
    "RunSummary",
    "SequenceResult",
    "TrackerLike",
    "TrackerSource",
    "first_box",
    "is_finished",
    "result_paths",
    "run_one",
    "run_sequence",
    "track_dataset",
    "track_sequence",
    "write_results",
]
