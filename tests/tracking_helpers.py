"""Test helpers: synthetic moving-box sequences and oracle models that honour the model interface.

The oracles find the target in their own search input: every target pixel emits events and there is no
background, so the event centroid is the box centre and ``sqrt(12 * variance)`` its size (a uniform
distribution of width w has variance w^2 / 12). They write those into score/size/offset maps exactly as a
center head would, so the tracker's cropping, representation, decoding and coordinate mapping are all
exercised end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from spiketrack.config import ExperimentConfig, load_config
from spiketrack.data.dataset import write_split
from spiketrack.data.events import EventArray
from spiketrack.data.h5seq import save_sequence
from spiketrack.data.inputs import InputSpec
from spiketrack.data.sequence import MemorySequence

FRAME_US = 10_000


def moving_box_sequence(
    name: str = "moving",
    frames: int = 20,
    start: tuple[int, int] = (30, 40),
    velocity: tuple[int, int] = (3, 2),
    size: tuple[int, int] = (20, 16),
    width: int = 160,
    height: int = 120,
    empty: set[int] | None = None,
    positions: list[tuple[int, int]] | None = None,
) -> MemorySequence:
    """Integer box moving at constant velocity; every box pixel fires one event per frame (none in ``empty``)."""
    empty = empty or set()
    w, h = size
    boxes, parts = [], []
    frame_times = np.arange(1, frames + 1, dtype=np.int64) * FRAME_US
    for k in range(frames):
        x, y = positions[k] if positions else (start[0] + velocity[0] * k, start[1] + velocity[1] * k)
        boxes.append([x, y, w, h])
        if k in empty:
            continue
        yy, xx = np.mgrid[y : y + h, x : x + w]
        n = xx.size
        t = frame_times[k] - FRAME_US + 1 + (np.arange(n) * (FRAME_US - 1)) // n  # spread over the window
        parts.append(EventArray.from_arrays(t, xx.ravel(), yy.ravel(), np.arange(n) % 2))
    events = EventArray.concatenate(parts)
    absent = np.zeros(frames, dtype=np.uint8)
    return MemorySequence(name, width, height, events, frame_times, np.array(boxes, np.float32), absent)


def write_dataset(root: Path, sequences: list[MemorySequence], split: str = "test") -> Path:
    """Native files + split list of ``sequences`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for s in sequences:
        save_sequence(root / f"{s.name}.h5", s)
    write_split(root, split, [s.name for s in sequences])
    return root


def small_config(kind: str = "student", **tracking: object) -> ExperimentConfig:
    """Small crops (template 64, search 128) so tests stay fast; tracking options as overrides."""
    sets = [f"model.kind={kind}", "model.variant=quickstart", "data.template_size=64", "data.search_size=128"]
    sets += ["model.timesteps=2"]
    sets += [f"tracking.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in tracking.items()]
    return load_config(None, sets)


def oracle_maps(counts: torch.Tensor, stride: int = 16) -> dict[str, torch.Tensor]:
    """Head outputs placing the target found in ``counts`` [B, S, S] (event counts per crop cell)."""
    b, s, _ = counts.shape
    hf = s // stride
    coords = torch.arange(s, dtype=torch.float64) + 0.5  # cell centres
    score = torch.full((b, 1, hf, hf), 0.05, dtype=torch.float32)
    size = torch.zeros(b, 2, hf, hf)
    offset = torch.zeros(b, 2, hf, hf)
    for i in range(b):
        c = counts[i].double()
        total = c.sum()
        if total <= 0:
            continue
        px, py = c.sum(0) / total, c.sum(1) / total  # marginals over x (columns) and y (rows)
        mx, my = (px * coords).sum(), (py * coords).sum()
        wx = torch.sqrt(12 * (px * (coords - mx) ** 2).sum())
        wy = torch.sqrt(12 * (py * (coords - my) ** 2).sum())
        gx, gy = float(mx / s * hf), float(my / s * hf)  # centre in score-map cells
        ix, iy = min(int(gx), hf - 1), min(int(gy), hf - 1)
        score[i, 0, iy, ix] = 0.95
        size[i, 0], size[i, 1] = float(wx / s), float(wy / s)
        offset[i, 0], offset[i, 1] = gx - ix, gy - iy
    return {"score_map": score, "size_map": size, "offset_map": offset}


class OracleStudent(nn.Module):
    """Student interface whose search branch locates the target from its own event bins."""

    input_spec = InputSpec.event_bins(2)  # small_config's model.timesteps

    def __init__(self) -> None:
        super().__init__()
        self.encoded = 0
        self.merged: list[list[object]] = []
        self.searched = 0

    def encode_template(self, template_bins: torch.Tensor) -> dict[str, object]:
        assert template_bins.dim() == 5 and template_bins.shape[2] == 2, template_bins.shape
        self.encoded += 1
        return {"id": self.encoded, "events": float(template_bins.sum())}

    def merge_memories(self, memories: list[object]) -> dict[str, object]:
        self.merged.append(list(memories))
        return {"merged": list(memories)}

    def track(self, search_bins: torch.Tensor, memory: object, return_features: bool = False) -> dict:
        assert search_bins.dim() == 5 and search_bins.shape[2] == 2, search_bins.shape
        self.searched += 1
        return oracle_maps(search_bins.sum(dim=(0, 2)))

    def forward(self, template_bins: torch.Tensor, search_bins: torch.Tensor) -> dict:
        return self.track(search_bins, self.encode_template(template_bins))


class OracleTeacher(nn.Module):
    """Teacher interface (dict inputs by modality) that locates the target from its 'events' count frame."""

    input_spec = InputSpec.from_modalities("events")
    encodes_template = False

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode_template(self, template: dict) -> dict:
        return template

    def track(self, search: dict, template: dict, return_features: bool = False) -> dict:
        assert set(template) == set(search) == {"events"}, (set(template), set(search))
        self.calls += 1
        return oracle_maps(search["events"].sum(dim=1))

    def forward(self, template: dict, search: dict, return_features: bool = False) -> dict:
        return self.track(search, self.encode_template(template), return_features)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of x, y, w, h boxes."""
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)
