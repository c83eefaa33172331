"""Model inputs from a frame's events (and RGB): the single place where crops become tensors.

Training and tracking must feed the model identical inputs, so both build them here:
- student: timestep bins ``[T, 2, S, S]`` of the cropped events over the frame window ``(t0, t1]``
  (T = ``cfg.model.timesteps``); batched to ``[T, B, 2, S, S]``.
- teacher: a dict with one entry per modality of ``cfg.model.modalities`` ('events' -> ``[2, S, S]`` count
  frame, 'rgb' -> ``[3, S, S]`` in [0, 1], 'voxel' -> ``[bins, S, S]`` voxel grid); batched to ``[B, C, S, S]``.

Events are cropped exactly (coordinates mapped into the output grid, see
:func:`spiketrack.data.crop.crop_events`), images with bilinear crop-and-resize.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np
import torch

from spiketrack.config import ExperimentConfig
from spiketrack.data.crop import CropWindow, crop_events, crop_image, image_to_tensor
from spiketrack.data.events import EventArray
from spiketrack.data.representations import count_frame, timestep_bins, voxel_grid
from spiketrack.errors import ConfigError

# Input views of each teacher modality setting (HDETrack/CEUTrack-style two-stream teachers; DESIGN §4).
# The one place that maps ``cfg.model.modalities`` to input tensors: sampling, tracking and the teacher use it.
MODALITY_INPUTS: dict[str, tuple[str, ...]] = {
    "events": ("events",),
    "rgb+events": ("rgb", "events"),
    "events+voxel": ("events", "voxel"),
}


def teacher_input_keys(modalities: str) -> tuple[str, ...]:
    """Input dict keys of a teacher with ``cfg.model.modalities``."""
    if modalities not in MODALITY_INPUTS:
        raise ConfigError(f"key 'model.modalities': expected one of {sorted(MODALITY_INPUTS)}, got {modalities!r}")
    return MODALITY_INPUTS[modalities]

ModelInput = torch.Tensor | dict[str, torch.Tensor]


@dataclass(frozen=True)
class InputSpec:
    """What a model eats: ``kind`` student|teacher, teacher modality keys, T and voxel bins."""

    kind: str
    modalities: tuple[str, ...] = ("events",)
    timesteps: int = 4
    voxel_bins: int = 5

    @staticmethod
    def from_config(cfg: ExperimentConfig) -> InputSpec:
        """Spec of ``cfg.model`` (teacher modalities 'events', 'rgb+events', 'events+voxel', ...)."""
        kind = cfg.model.kind
        if kind == "student":
            return InputSpec("student", ("events",), int(cfg.model.timesteps), int(cfg.data.voxel_bins))
        mods = teacher_input_keys(cfg.model.modalities)
        return InputSpec("teacher", mods, int(cfg.model.timesteps), int(cfg.data.voxel_bins))

    @property
    def needs_rgb(self) -> bool:
        return self.kind == "teacher" and "rgb" in self.modalities

    @property
    def needs_events(self) -> bool:
        return self.kind == "student" or any(m != "rgb" for m in self.modalities)


def build_inputs(
    events: EventArray,
    t0: int,
    t1: int,
    window: CropWindow,
    out_size: int,
    *,
    teacher_keys: SequenceABC[str] = (),
    timesteps: int = 0,
    voxel_bins: int = 5,
    rgb: np.ndarray | torch.Tensor | None = None,
    flip: bool = False,
    thin: Callable[[EventArray], EventArray] | None = None,
    rgb_gain: float = 1.0,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Every representation asked for, of one crop, from the same cropped events.

    Keys: teacher views ``'events'`` ``[2, S, S]``, ``'voxel'`` ``[bins, S, S]``, ``'rgb'`` ``[3, S, S]`` in [0, 1]
    (those in ``teacher_keys``) and ``'bins'`` ``[T, 2, S, S]`` for the student when ``timesteps`` > 0.
    ``events`` are the frame window's events in image coordinates (``t0 < t <= t1``); ``rgb`` is uint8
    ``[H, W, 3]`` (or a float ``[3, H, W]`` tensor in [0, 1]). Training augmentation hooks: ``thin`` drops
    cropped events (intensity jitter), ``rgb_gain`` scales the RGB crop (clipped to [0, 1]).
    """
    cropped = crop_events(events, window, out_size, flip=flip)
    if thin is not None and len(cropped):
        cropped = thin(cropped)
    out: dict[str, torch.Tensor] = {}
    if "events" in teacher_keys:
        out["events"] = count_frame(cropped, out_size, out_size, device=device)
    if "voxel" in teacher_keys:
        out["voxel"] = voxel_grid(cropped, out_size, out_size, voxel_bins, t0, t1, device=device)
    if "rgb" in teacher_keys:
        if rgb is None:
            raise ConfigError("model.modalities includes 'rgb' but the frame has no intensity image")
        image = rgb if isinstance(rgb, torch.Tensor) else image_to_tensor(rgb, device=device)
        crop = crop_image(image.to(device) if device is not None else image, window, out_size, flip=flip)
        out["rgb"] = (crop * rgb_gain).clamp_(0.0, 1.0) if rgb_gain != 1.0 else crop
    if timesteps:
        out["bins"] = timestep_bins(cropped, out_size, out_size, timesteps, t0, t1, device=device)
    return out


def build_input(
    spec: InputSpec,
    events: EventArray,
    t0: int,
    t1: int,
    window: CropWindow,
    out_size: int,
    rgb: np.ndarray | torch.Tensor | None = None,
    flip: bool = False,
    device: torch.device | str | None = None,
) -> ModelInput:
    """One unbatched model input of the crop ``window`` resized to ``out_size`` pixels.

    Returns ``[T, 2, S, S]`` (student) or a dict of ``[C, S, S]`` tensors (teacher); see :func:`build_inputs`.
    """
    if spec.kind == "student":
        return build_inputs(events, t0, t1, window, out_size, timesteps=spec.timesteps, flip=flip, device=device)["bins"]
    return build_inputs(
        events, t0, t1, window, out_size, teacher_keys=spec.modalities, voxel_bins=spec.voxel_bins, rgb=rgb,
        flip=flip, device=device,
    )


def batch_inputs(items: SequenceABC[ModelInput]) -> ModelInput:
    """Stack unbatched inputs: student ``[T, 2, S, S]`` -> ``[T, B, 2, S, S]``; teacher dict -> ``[B, C, S, S]``."""
    if isinstance(items[0], dict):
        return {key: torch.stack([it[key] for it in items], dim=0) for key in items[0]}  # type: ignore[index]
    return torch.stack(list(items), dim=1)  # type: ignore[arg-type]


def crop_event_count(events: EventArray, window: CropWindow) -> int:
    """Number of events whose pixel centre falls inside ``window`` (0 means the model would see nothing)."""
    if len(events) == 0:
        return 0
    x = events.x.astype(np.float64) + 0.5
    y = events.y.astype(np.float64) + 0.5
    inside = (x >= window.x0) & (x < window.x0 + window.side) & (y >= window.y0) & (y < window.y0 + window.side)
    return int(np.count_nonzero(inside))


__all__ = [
    "MODALITY_INPUTS",
    "InputSpec",
    "ModelInput",
    "batch_inputs",
    "build_input",
    "build_inputs",
    "crop_event_count",
    "teacher_input_keys",
]
