"""Event representations as torch tensors (CPU or GPU): count frames, voxel grids, timestep bins.

Conventions:
- Channel order of polarity tensors is ``[OFF, ON]`` (channel index = polarity value ``p``).
- A window is ``(t0, t1]`` in µs, as in docs/architecture.md, "Sequence files"; timestep bin i of T holds
  ``t0 + i*d < t <= t0 + (i+1)*d`` with ``d = (t1 - t0) / T`` — each bin is a real temporal slice,
  not a copy of the whole window.
- Everything is computed with one ``bincount`` over a flat index, so cost is linear in the event count
  and there is no Python loop over events or pixels.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC

import numpy as np
import torch

from spiketrack.data.events import EventArray


def _index_dtype(size: int) -> type:
    return np.int32 if size < np.iinfo(np.int32).max else np.int64


def _is_cpu(device: torch.device | str | None) -> bool:
    return device is None or torch.device(device).type == "cpu"


def _bincount(
    idx: np.ndarray, size: int, device: torch.device | str | None, weights: np.ndarray | None = None
) -> torch.Tensor:
    """Histogram of a flat index: numpy on CPU (fastest single-core path), torch on an accelerator."""
    if _is_cpu(device):
        counts = np.bincount(idx, weights=weights, minlength=size)
        return torch.from_numpy(counts.astype(np.float32, copy=False))
    w = None if weights is None else torch.from_numpy(weights).to(device)
    return torch.bincount(torch.from_numpy(idx.astype(np.int64)).to(device), weights=w, minlength=size).float()


def _keep_inside(events: EventArray, height: int, width: int) -> EventArray:
    inside = (events.x < width) & (events.y < height)
    return events if bool(inside.all()) else events[inside]


def count_frame(
    events: EventArray, height: int, width: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Per-pixel event counts ``[2, H, W]`` (float32), channel 0 OFF, channel 1 ON."""
    events = _keep_inside(events, height, width)
    size = 2 * height * width
    dt = _index_dtype(size)
    idx = events.p.astype(dt) * (height * width) + events.y.astype(dt) * width + events.x
    return _bincount(idx, size, device).view(2, height, width)


def count_frames(
    batch: SequenceABC[EventArray], height: int, width: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Count frames of several windows at once: ``[B, 2, H, W]``."""
    if not batch:
        return torch.zeros(0, 2, height, width, device=device)
    parts = [_keep_inside(e, height, width) for e in batch]
    plane = 2 * height * width
    dt = _index_dtype(len(parts) * plane)
    idx = [e.p.astype(dt) * (height * width) + e.y.astype(dt) * width + e.x + b * plane for b, e in enumerate(parts)]
    return _bincount(np.concatenate(idx), len(parts) * plane, device).view(len(parts), 2, height, width)


def _time_position(t: np.ndarray, t0: int, t1: int, bins: int) -> np.ndarray:
    """Continuous position of each timestamp on ``[0, bins-1]`` (voxel-grid convention, Zhu et al. 2019)."""
    span = max(int(t1) - int(t0), 1)
    return (t.astype(np.float64) - t0) * ((bins - 1) / span) if bins > 1 else np.zeros(len(t))


def voxel_grid(
    events: EventArray,
    height: int,
    width: int,
    bins: int,
    t0: int,
    t1: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Voxel grid ``[bins, H, W]``: each event adds ±1 (ON/OFF) split bilinearly between its two nearest bins.

    Follows the event-volume construction of Zhu et al., "Unsupervised event-based learning of optical
    flow, depth, and egomotion", CVPR 2019 (temporal bilinear kernel, polarity as sign).
    """
    events = _keep_inside(events, height, width)
    pos = np.clip(_time_position(events.t, t0, t1, bins), 0, bins - 1)
    lower = np.floor(pos)
    frac = pos - lower
    lower = lower.astype(np.int64)
    upper = np.minimum(lower + 1, bins - 1)
    sign = events.p.astype(np.float64) * 2 - 1
    pix = events.y.astype(np.int64) * width + events.x
    plane = height * width
    size = bins * plane
    idx = np.concatenate([lower * plane + pix, upper * plane + pix])
    weights = np.concatenate([sign * (1 - frac), sign * frac * (upper != lower)])
    return _bincount(idx, size, device, weights).view(bins, height, width)


def timestep_index(t: np.ndarray, t0: int, t1: int, timesteps: int) -> np.ndarray:
    """Bin index of each timestamp of ``(t0, t1]``: bin i holds ``t0 + i*d < t <= t0 + (i+1)*d``."""
    span = max(int(t1) - int(t0), 1)
    idx = ((t.astype(np.int64) - t0) * timesteps - 1) // span
    return np.clip(idx, 0, timesteps - 1)


def timestep_bins(
    events: EventArray,
    height: int,
    width: int,
    timesteps: int,
    t0: int,
    t1: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[T, 2, H, W]`` polarity counts of T consecutive temporal slices of the window ``(t0, t1]``."""
    events = _keep_inside(events, height, width)
    plane = height * width
    size = timesteps * 2 * plane
    dt = _index_dtype(size)
    step = timestep_index(events.t, t0, t1, timesteps).astype(dt)
    idx = (step * 2 + events.p) * plane + events.y.astype(dt) * width + events.x
    return _bincount(idx, size, device).view(timesteps, 2, height, width)
