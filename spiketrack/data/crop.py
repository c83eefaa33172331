"""Square crops around a box with a context factor (OSTrack convention; docs/data.md, "Event representations and
crops").

A crop of ``factor`` around box ``(x, y, w, h)`` is the square of side ``factor * sqrt(w * h)`` centred on
the box centre (OSTrack's ``sample_target``: template factor 2, search factor 4). Pixel i covers
``[i, i + 1)``, so a box's centre is ``(x + w/2, y + h/2)``. Parts of the crop outside the image are zero.

Events are cropped by mapping their coordinates into the output grid (exact, no resampling of a
full-resolution frame); images are cropped with bilinear ``roi_align`` (area-averaging when shrinking).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import roi_align

from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError


@dataclass(frozen=True)
class CropWindow:
    """A square region of the image: centre ``(cx, cy)`` and side length, in pixels."""

    cx: float
    cy: float
    side: float

    @property
    def x0(self) -> float:
        return self.cx - self.side / 2

    @property
    def y0(self) -> float:
        return self.cy - self.side / 2

    @staticmethod
    def around(box: np.ndarray | tuple[float, ...], factor: float, min_side: float = 1.0) -> CropWindow:
        """The crop of ``factor`` around box ``(x, y, w, h)``."""
        x, y, w, h = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise DataFormatError(None, "boxes", f"cannot crop around the non-finite box {[x, y, w, h]}")
        side = max(math.sqrt(max(w, 0.0) * max(h, 0.0)) * factor, min_side)
        return CropWindow(x + w / 2, y + h / 2, side)

    def jittered(self, rng: np.random.Generator, center_jitter: float, scale_jitter: float, factor: float) -> CropWindow:
        """Randomly shifted and rescaled window, as OSTrack jitters its search boxes.

        The box size ``s = side / factor`` is scaled by ``exp(N(0, scale_jitter))`` and the centre moves by
        ``U(-0.5, 0.5) * center_jitter * s`` per axis (OSTrack search: center 3.0, scale 0.25).
        """
        box_size = self.side / factor
        new_size = box_size * math.exp(rng.normal(0.0, scale_jitter)) if scale_jitter > 0 else box_size
        shift = (rng.uniform(-0.5, 0.5, size=2) * center_jitter * new_size) if center_jitter > 0 else np.zeros(2)
        return CropWindow(self.cx + float(shift[0]), self.cy + float(shift[1]), new_size * factor)

    def scaled(self, factor: float) -> CropWindow:
        """Same centre, side times ``factor`` (adaptive search region)."""
        return CropWindow(self.cx, self.cy, self.side * factor)

    def box_to_crop(self, box: np.ndarray) -> np.ndarray:
        """Image box(es) ``[..., 4]`` x,y,w,h -> normalised ``[..., 4]`` (cx, cy, w, h) in crop units [0, 1]."""
        box = np.asarray(box, dtype=np.float64)
        cx = (box[..., 0] + box[..., 2] / 2 - self.x0) / self.side
        cy = (box[..., 1] + box[..., 3] / 2 - self.y0) / self.side
        return np.stack([cx, cy, box[..., 2] / self.side, box[..., 3] / self.side], axis=-1)

    def crop_to_box(self, norm: np.ndarray) -> np.ndarray:
        """Normalised (cx, cy, w, h) in crop units -> image box x, y, w, h (inverse of :meth:`box_to_crop`)."""
        norm = np.asarray(norm, dtype=np.float64)
        w = norm[..., 2] * self.side
        h = norm[..., 3] * self.side
        cx = self.x0 + norm[..., 0] * self.side
        cy = self.y0 + norm[..., 1] * self.side
        return np.stack([cx - w / 2, cy - h / 2, w, h], axis=-1)


def crop_events(events: EventArray, window: CropWindow, out_size: int, flip: bool = False) -> EventArray:
    """Events inside ``window`` with x, y mapped to cells of an ``out_size`` x ``out_size`` grid.

    Each event's pixel centre ``(x + 0.5, y + 0.5)`` is mapped into the crop and floored to a cell;
    events outside the crop are dropped. ``flip`` mirrors the grid horizontally (augmentation).
    """
    if len(events) == 0:
        return events
    scale = out_size / window.side
    u = np.floor((events.x.astype(np.float64) + 0.5 - window.x0) * scale)
    v = np.floor((events.y.astype(np.float64) + 0.5 - window.y0) * scale)
    keep = (u >= 0) & (u < out_size) & (v >= 0) & (v < out_size)
    u, v = u[keep], v[keep]
    if flip:
        u = out_size - 1 - u
    return EventArray(events.t[keep], u.astype(np.uint16), v.astype(np.uint16), events.p[keep])


def image_to_tensor(image: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float ``[3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().div_(255.0)


def crop_images(images: torch.Tensor, windows: list[CropWindow], out_size: int) -> torch.Tensor:
    """Crop-and-resize ``[B, C, H, W]`` images to ``[B, C, S, S]`` (one window per image, zeros outside)."""
    # roi_align clamps samples within one pixel outside the image to the edge; a one-pixel zero border
    # makes everything outside the image exactly zero.
    images = torch.nn.functional.pad(images, (1, 1, 1, 1))
    boxes = torch.tensor(
        [[b, w.x0 + 1, w.y0 + 1, w.x0 + 1 + w.side, w.y0 + 1 + w.side] for b, w in enumerate(windows)],
        dtype=images.dtype,
        device=images.device,
    )
    # one bilinear sample per source pixel and output cell: exact at 1:1, an area average when shrinking
    ratio = max(1, math.ceil(max(w.side for w in windows) / out_size))
    return roi_align(
        images, boxes, output_size=(out_size, out_size), spatial_scale=1.0, sampling_ratio=ratio, aligned=True
    )


def crop_image(image: torch.Tensor, window: CropWindow, out_size: int, flip: bool = False) -> torch.Tensor:
    """Crop-and-resize one ``[C, H, W]`` tensor (RGB frame, count frame, voxel grid) to ``[C, S, S]``."""
    out = crop_images(image.unsqueeze(0), [window], out_size)[0]
    return out.flip(-1) if flip else out
