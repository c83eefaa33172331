"""From head maps to an image box: Hann window, argmax decoding, crop -> image mapping, clipping, IoU."""

from __future__ import annotations

import math

import numpy as np
import torch

from spiketrack.data.crop import CropWindow
from spiketrack.models.heads import decode_boxes


def hann1d(n: int) -> torch.Tensor:
    """Symmetric Hann window of ``n`` points that stays positive at the ends: ``0.5 (1 - cos(2 pi i / (n + 1)))``,
    i = 1..n (the "centred" window OSTrack multiplies its score map by; Ye et al., ECCV 2022)."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return (0.5 * (1.0 - torch.cos(2.0 * math.pi * i / (n + 1)))).float()


def hann2d(height: int, width: int) -> torch.Tensor:
    """Outer product of two Hann windows: ``[height, width]``, peak in the centre."""
    return hann1d(height)[:, None] * hann1d(width)[None, :]


def decode(
    outputs: dict[str, torch.Tensor], window: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes and scores from head outputs.

    outputs: 'score_map' [B, 1, Hf, Wf], 'size_map' [B, 2, Hf, Wf], 'offset_map' [B, 2, Hf, Wf];
    window: optional [Hf, Wf] penalty multiplied onto the score map before the argmax.
    Returns boxes [B, 4] (cx, cy, w, h) normalised to the search crop and scores [B]: the raw (unwindowed)
    score at the chosen cell, so thresholds keep their probability meaning.
    """
    score = outputs["score_map"]
    ranked = score * window.to(score.device, score.dtype) if window is not None else score
    boxes = decode_boxes(ranked, outputs["size_map"], outputs["offset_map"])
    idx = ranked.flatten(1).argmax(dim=1, keepdim=True)
    scores = score.flatten(1).gather(1, idx).squeeze(1)
    return boxes, scores


def to_image_box(norm_box: np.ndarray | torch.Tensor, crop: CropWindow) -> np.ndarray:
    """Normalised (cx, cy, w, h) in crop units -> image box x, y, w, h (float64)."""
    if isinstance(norm_box, torch.Tensor):
        norm_box = norm_box.detach().float().cpu().numpy()
    return crop.crop_to_box(np.asarray(norm_box, dtype=np.float64))


def clip_box(box: np.ndarray, width: int, height: int, margin: float = 0.0, min_size: float = 1.0) -> np.ndarray:
    """Clip box x, y, w, h to the image enlarged by ``margin`` pixels on every side.

    A box that collapses below ``min_size`` (it left the image) keeps ``min_size`` pixels at the border,
    so the next search crop stays valid.
    """
    x, y, w, h = (float(v) for v in box)
    lo_x, hi_x, lo_y, hi_y = -margin, width + margin, -margin, height + margin
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"non-finite box {box!r}")
    x1, x2 = min(max(x, lo_x), hi_x), min(max(x + w, lo_x), hi_x)
    y1, y2 = min(max(y, lo_y), hi_y), min(max(y + h, lo_y), hi_y)
    if x2 - x1 < min_size:
        x1 = min(x1, hi_x - min_size)
        x2 = x1 + min_size
    if y2 - y1 < min_size:
        y1 = min(y1, hi_y - min_size)
        y2 = y1 + min_size
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x, y, w, h boxes (0 when either is empty)."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = max(aw, 0.0) * max(ah, 0.0) + max(bw, 0.0) * max(bh, 0.0) - inter
    return inter / union if union > 0 else 0.0


__all__ = ["box_iou", "clip_box", "decode", "hann1d", "hann2d", "to_image_box"]
