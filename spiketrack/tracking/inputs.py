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

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np
import torch

from spiketrack.config import ExperimentConfig
from spiketrack.data.crop import CropWindow, crop_events, crop_image, image_to_tensor
from spiketrack.data.events import EventArray
from spiketrack.data.representations import count_frame, timestep_bins, voxel_grid
from spiketrack.errors import ConfigError

TEACHER_MODALITIES = ("events", "rgb", "voxel")

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
        mods = tuple(m.strip() for m in cfg.model.modalities.split("+") if m.strip())
        unknown = [m for m in mods if m not in TEACHER_MODALITIES]
        if not mods or unknown:
            raise ConfigError(
                f"key 'model.modalities': {cfg.model.modalities!r} has unknown modality {unknown or '(empty)'}; "
                f"expected '+'-joined names from {list(TEACHER_MODALITIES)}"
            )
        return InputSpec("teacher", mods, int(cfg.model.timesteps), int(cfg.data.voxel_bins))

    @property
    def needs_rgb(self) -> bool:
        return self.kind == "teacher" and "rgb" in self.modalities

    @property
    def needs_events(self) -> bool:
        return self.kind == "student" or any(m != "rgb" for m in self.modalities)


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

    ``events`` are the frame window's events in image coordinates (``t0 < t <= t1``); ``rgb`` is uint8
    ``[H, W, 3]`` (or a float ``[3, H, W]`` tensor in [0, 1]) and is required when the spec needs it.
    Returns ``[T, 2, S, S]`` (student) or a dict of ``[C, S, S]`` tensors (teacher).
    """
    cropped = crop_events(events, window, out_size, flip=flip)
    if spec.kind == "student":
        return timestep_bins(cropped, out_size, out_size, spec.timesteps, t0, t1, device=device)
    out: dict[str, torch.Tensor] = {}
    for mod in spec.modalities:
        if mod == "events":
            out["events"] = count_frame(cropped, out_size, out_size, device=device)
        elif mod == "voxel":
            out["voxel"] = voxel_grid(cropped, out_size, out_size, spec.voxel_bins, t0, t1, device=device)
        else:  # rgb
            if rgb is None:
                raise ConfigError("model.modalities includes 'rgb' but the frame has no intensity image")
            image = rgb if isinstance(rgb, torch.Tensor) else image_to_tensor(rgb, device=device)
            out["rgb"] = crop_image(image.to(device) if device is not None else image, window, out_size, flip=flip)
    return out


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


__all__ = ["InputSpec", "ModelInput", "TEACHER_MODALITIES", "batch_inputs", "build_input", "crop_event_count"]
