"""Online single-object tracker around a teacher or student model (docs/tracking.md, "How the tracker works").

``initialize(frame, box)`` builds the template from the first frame; ``track(frame) -> (box, score)`` crops
a search region of ``search_factor`` around the last box, runs the model, multiplies the score map by a Hann
window, decodes the box at the argmax, maps it back to image coordinates and clips it to the image.

- Every model has one call protocol (:mod:`spiketrack.models`): ``encode_template`` runs once and its state is
  cached (student: the template memory; teacher: its template inputs, which the one-stream model sees again in
  every call), ``track(search, state)`` runs every frame. Inputs are built as the model's ``input_spec`` says.
- Template update, for a model that supports several templates (it exposes ``merge_memories``): with
  ``tracking.template_update`` a new template slot is encoded every ``update_interval`` frames when the
  score exceeds ``update_threshold``; the first template is always kept, at most ``max_templates`` slots
  (oldest added slot replaced first), combined with ``model.merge_memories``. Other models keep their first
  template.
- Adaptive search region (:mod:`spiketrack.tracking.asr`) enlarges one search crop after repeated jumps.
- A search crop without events (event-only models) keeps the last box and multiplies the score by
  ``tracking.empty_score_decay``: the model would see an all-zero input.
- A prediction scoring below ``tracking.lost_threshold`` (when > 0) is not adopted: the last confident box is
  kept and the next search crop may grow (``lost_search_growth`` per lost frame, up to ``lost_search_max``).

- Test-time tuning (``tracking.ttt.enabled``, :mod:`spiketrack.tracking.ttt`): the first ``ttt.frames`` adopted
  boxes are pseudo-labels; after them LoRA adapters are tuned and merged into the weights, the first template is
  encoded again with the tuned model (the memory holds that one slot again) and tracking continues. ``finish()``
  (the runner calls it when the sequence ends; ``initialize`` does too) restores the original weights.

``meter`` (optional, :class:`~spiketrack.tracking.meter.TrackerMeter`) receives every model call:
``meter.measure(kind)`` is a context manager entered around the call, kind ``template_init`` |
``template_update`` | ``search`` | ``test_time_tuning``; a meter with ``set_frame(k)`` is told each frame's index first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from spiketrack.config import ExperimentConfig
from spiketrack.data.crop import CropWindow
from spiketrack.data.inputs import InputSpec, ModelInput, build_input, crop_event_count
from spiketrack.tracking.asr import AdaptiveSearchRegion
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.meter import TrackerMeter
from spiketrack.tracking.postprocess import box_iou, clip_box, decode, hann2d, to_image_box
from spiketrack.tracking.timing import StageTimer
from spiketrack.tracking.ttt import TUNING_KIND, TestTimeTuner


class Tracker(Protocol):
    """What the runner drives: model trackers and the event-density baseline alike."""

    def initialize(self, frame: TrackingFrame, box: np.ndarray) -> None: ...

    def track(self, frame: TrackingFrame) -> tuple[np.ndarray, float]: ...


class ModelTracker:
    """Tracks one target with any model of the call protocol (``encode_template`` / ``track``)."""

    def __init__(
        self,
        model: nn.Module,
        cfg: ExperimentConfig,
        device: torch.device | str | None = None,
        meter: TrackerMeter | None = None,
        timer: StageTimer | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model = model.to(self.device).eval()
        if cfg.model.kind == "student":  # a forced neuron backend that cannot run here: said now, not at frame 1
            from spiketrack.models.spiking.neurons import check_backend

            check_backend(cfg.model.neuron, self.device)
        self.spec: InputSpec = self.model.input_spec
        self.supports_template_update = hasattr(self.model, "merge_memories")
        self.encodes_template = bool(getattr(self.model, "encodes_template", True))
        self.data_cfg = cfg.data
        self.cfg = cfg.tracking
        self.meter = meter
        self.timer = timer or StageTimer(self.device)
        t = cfg.tracking
        self.asr = AdaptiveSearchRegion(t.asr_tau, t.asr_m, t.asr_theta, enabled=t.asr)
        self._windows: dict[tuple[int, int], torch.Tensor] = {}
        self.box = np.zeros(4)
        self.init_size = np.ones(2)  # (w, h) of the first box, for max_scale_change
        self.score = 0.0
        self.frames_since_init = 0
        self.slots: list[Any] = []  # template states; slots[0] is the first template
        self.memory: Any = None  # the state track() uses (slots merged by the model when it supports several)
        self.last_window: CropWindow | None = None  # search crop of the last tracked frame
        self.lost_scale = 1.0  # search-crop multiplier while the target is lost (tracking.lost_threshold)
        self.ttt = TestTimeTuner(self.model, t.ttt) if t.ttt.enabled else None
        self._first: tuple[TrackingFrame, np.ndarray] | None = None  # first frame and box (test-time tuning)

    # ------------------------------------------------------------------------------------------ helpers
    def _tag_frame(self, frame: TrackingFrame) -> None:
        """Tell a meter that can attribute calls to frames (``set_frame``) which frame comes next."""
        set_frame = getattr(self.meter, "set_frame", None)
        if set_frame is not None:
            set_frame(frame.index)

    def _measure(self, kind: str) -> AbstractContextManager[Any]:
        return self.meter.measure(kind) if self.meter is not None else nullcontext()

    def _input(
        self, frame: TrackingFrame, window: CropWindow, size: int, template: bool = False, thin: Any = None
    ) -> ModelInput:
        dev = None if self.device.type == "cpu" else self.device
        item = build_input(
            self.spec, frame.events, frame.t0, frame.t1, window, size, rgb=frame.rgb, device=dev, template=template,
            thin=thin,
        )
        return self.spec.batch([item])

    def _encode(self, frame: TrackingFrame, box: np.ndarray, kind: str) -> Any:
        """Template state of the crop around ``box`` (``model.encode_template``; a call that runs layers is measured)."""
        window = CropWindow.around(box, self.data_cfg.template_factor)
        with self.timer.stage("representation"):
            inputs = self._input(frame, window, self.data_cfg.template_size, template=True)
        if not self.encodes_template:  # the state is the inputs themselves: no layer runs, nothing to time or count
            return self.model.encode_template(inputs)
        with self.timer.stage("model"), self._measure(kind), torch.no_grad():
            return self.model.encode_template(inputs)

    def hann(self, height: int, width: int) -> torch.Tensor:
        """Cached ``[height, width]`` Hann window."""
        key = (height, width)
        if key not in self._windows:
            self._windows[key] = hann2d(height, width).to(self.device)
        return self._windows[key]

    # ------------------------------------------------------------------------------------------ API
    def initialize(self, frame: TrackingFrame, box: np.ndarray | list[float]) -> None:
        """Start tracking from ``box`` (x, y, w, h) on ``frame``; the template is built and cached here."""
        b = np.asarray(box, dtype=np.float64).reshape(4)
        if not (np.all(np.isfinite(b)) and b[2] > 0 and b[3] > 0):
            raise ValueError(f"initial box must have positive width and height, got {b.tolist()}")
        self.box, self.score, self.frames_since_init = b, 1.0, 0
        self.init_size = b[2:].copy()
        self.lost_scale = 1.0
        self._tag_frame(frame)
        self.asr.reset()
        if self.ttt is not None:
            self.ttt.start(seed=len(frame.events))  # removes adapters a previous sequence left
            self._first = (frame, b.copy())
        encoded = self._encode(frame, b, "template_init")
        self.slots, self.memory = [encoded], encoded

    def finish(self) -> None:
        """The sequence has ended: undo test-time tuning (the model is as it was before the sequence)."""
        if self.ttt is not None:
            self.ttt.finish()

    def track(self, frame: TrackingFrame) -> tuple[np.ndarray, float]:
        """Box (x, y, w, h, float64 [4]) and score in [0, 1] for ``frame``."""
        self.frames_since_init += 1
        self._tag_frame(frame)
        window = CropWindow.around(self.box, self.data_cfg.search_factor * self.asr.scale * self.lost_scale)
        self.last_window = window
        with self.timer.stage("representation"):
            empty = not self.spec.needs_rgb and crop_event_count(frame.events, window) == 0
        if empty:
            self.score *= self.cfg.empty_score_decay
            return self.box.copy(), self.score
        self.asr.consume()
        with self.timer.stage("representation"):
            search = self._input(frame, window, self.data_cfg.search_size)
        with self.timer.stage("model"), self._measure("search"), torch.no_grad():
            out = self.model.track(search, self.memory)
        with self.timer.stage("postprocess"):
            score_map = out["score_map"]
            hann = self.hann(*score_map.shape[-2:]) if self.cfg.hann_window else None
            norm, scores = decode(out, hann)
            score = float(scores[0])
            if score < self.cfg.lost_threshold:
                # target lost: keep the last confident box, search a larger crop next frame
                self.lost_scale = min(self.lost_scale * self.cfg.lost_search_growth, self.cfg.lost_search_max)
                self.score = score
                return self.box.copy(), self.score
            self.lost_scale = 1.0
            box = self._limited(self._damped(to_image_box(norm[0], window)))
            box = clip_box(box, frame.width, frame.height, self.cfg.margin)
            self.asr.update(box_iou(box, self.box))
            self.box, self.score = box, score
        if self.ttt is not None and not self.ttt.tuned:
            self.ttt.add(search, window.box_to_crop(self.box))
            if self.ttt.due:
                self._test_time_tune()
        if self._update_due():
            self._add_template(frame)
        return self.box.copy(), self.score

    def _test_time_tune(self) -> None:
        """Tune the adapters on the pseudo-labels, then encode the first template again with the tuned model."""
        assert self.ttt is not None and self._first is not None
        first, box = self._first
        window = CropWindow.around(box, self.data_cfg.template_factor)

        def template(thin: Any) -> ModelInput:
            return self._input(first, window, self.data_cfg.template_size, template=True, thin=thin)

        with self.timer.stage("model"):
            self.ttt.tune(template, self._measure)
        encoded = self._encode(first, box, TUNING_KIND)
        self.slots, self.memory = [encoded], encoded

    def _damped(self, box: np.ndarray) -> np.ndarray:
        """The predicted box with its size moved only ``size_update_rate`` of the way from the last size."""
        rate = self.cfg.size_update_rate
        if rate >= 1.0:
            return box
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        w = (1 - rate) * self.box[2] + rate * box[2]
        h = (1 - rate) * self.box[3] + rate * box[3]
        return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float64)

    def _limited(self, box: np.ndarray) -> np.ndarray:
        """The box with w and h clamped to ``[1/s, s]`` times the first box's (s = ``max_scale_change``), same centre."""
        s = self.cfg.max_scale_change
        if s <= 0:
            return box
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        w = float(np.clip(box[2], self.init_size[0] / s, self.init_size[0] * s))
        h = float(np.clip(box[3], self.init_size[1] / s, self.init_size[1] * s))
        return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float64)

    def _update_due(self) -> bool:
        c = self.cfg
        return (
            self.supports_template_update
            and c.template_update
            and c.max_templates > 1
            and self.frames_since_init % max(c.update_interval, 1) == 0
            and self.score > c.update_threshold
        )

    def _add_template(self, frame: TrackingFrame) -> None:
        """Encode the current box as a template slot (first slot kept; oldest added slot replaced)."""
        memory = self._encode(frame, self.box, "template_update")
        if len(self.slots) >= self.cfg.max_templates:
            self.slots.pop(1)
        self.slots.append(memory)
        with self.timer.stage("model"), self._measure("template_update"), torch.no_grad():
            self.memory = self.model.merge_memories(self.slots)


__all__ = ["ModelTracker", "Tracker", "TrackerMeter"]
