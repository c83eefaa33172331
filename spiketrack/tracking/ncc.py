"""Normalised cross-correlation (NCC) template matcher: a non-learned tracker that *does* use its template.

The event-density baseline boxes the busiest region near the last box and never looks at frame 0, so it shows
what "follow the salient moving thing" scores. This tracker is the other reference: the first frame's template,
matched by zero-mean normalised cross-correlation (Lewis, "Fast normalized cross-correlation", Vision Interface
1995) against a search region around the last box in every frame, one scale, a cosine (Hann) window against
jumps (SiamFC, Bertinetto et al., ECCV 2016, window influence 0.176-0.25 in its released trackers). It follows
appearance and nothing else; a learned tracker that does not beat it has not learned to match templates.

Representation (``tracking.ncc.modality``): ``events`` — per-pixel event counts of the frame window, the two
polarities summed (``channels: sum``) or kept apart (``polarity``); ``rgb`` — the intensity frame where the
sequence has one. Both are cut with the crops training and tracking use (:mod:`spiketrack.data.crop`): the
template is the square of side ``template_factor * sqrt(w h)`` around the first box, resampled to
``template_px`` cells, the search region ``search_factor`` times as large at the same scale; a box blur of
``blur`` cells smooths both. The NCC map is ``sum(T' * I) / (|T'| * |I - mean(I)|)`` over all channels (T'
zero-mean per channel), one value per placement of the template inside the search region. The box keeps the
first box's size (one scale); its centre moves to the best placement.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from spiketrack.config import NccConfig
from spiketrack.data.crop import CropWindow, crop_events, crop_image, image_to_tensor
from spiketrack.data.representations import count_frame
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.tracking.frame import TrackingFrame
from spiketrack.tracking.postprocess import hann2d

_EPS = 1e-6
MIN_EVENTS = 3  # fewer events in the search region: keep the last box (the map would be noise)


def normalised_cross_correlation(search: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Zero-mean NCC of ``template`` [C, n, n] at every placement inside ``search`` [C, m, m] -> [m-n+1, m-n+1].

    Values in [-1, 1]; 0 where the search window is constant (no texture to match).
    """
    c, n = template.shape[0], template.shape[-1]
    t = template - template.mean(dim=(1, 2), keepdim=True)
    t_norm = t.pow(2).sum().sqrt()
    x = search.unsqueeze(0)
    num = F.conv2d(x, t.unsqueeze(0))[0, 0]  # sum over channels of T' * I (T' zero-mean: the mean of I drops out)
    ones = torch.ones(c, 1, n, n, dtype=search.dtype)
    local_sum = F.conv2d(x, ones, groups=c)[0]  # [C, h, w] per-channel window sums
    local_sq = F.conv2d(x.pow(2), ones, groups=c)[0]
    var = (local_sq - local_sum.pow(2) / (n * n)).clamp_min(0).sum(dim=0)  # sum over channels of |I - mean|^2
    return torch.where(var > _EPS, num / (t_norm * var.sqrt() + _EPS), torch.zeros_like(num))


class NccTracker:
    """``initialize(frame, box)`` then ``track(frame) -> (box, score)``; boxes are x, y, w, h (top-left, px)."""

    name = "ncc"

    def __init__(self, params: NccConfig | None = None, empty_score_decay: float = 0.5) -> None:
        self.params = params or NccConfig()
        p = self.params
        if p.modality not in ("events", "rgb"):
            raise ConfigError(f"key 'tracking.ncc.modality': expected 'events' or 'rgb', got {p.modality!r}")
        if p.channels not in ("sum", "polarity"):
            raise ConfigError(f"key 'tracking.ncc.channels': expected 'sum' or 'polarity', got {p.channels!r}")
        self.search_px = int(round(p.template_px * p.search_factor))
        self.empty_score_decay = empty_score_decay
        self.template: torch.Tensor | None = None
        self.center = np.zeros(2)
        self.size = np.ones(2)
        self.score = 0.0
        self._window = hann2d(self.search_px - p.template_px + 1, self.search_px - p.template_px + 1)

    @property
    def box(self) -> np.ndarray:
        """Current box x, y, w, h (float64 [4])."""
        return np.concatenate([self.center - self.size / 2.0, self.size])

    def _crop(self, frame: TrackingFrame, window: CropWindow, size: int) -> torch.Tensor | None:
        """The frame's representation inside ``window`` at ``size`` x ``size`` cells -> [C, S, S] (blurred); None when
        an event crop holds fewer than :data:`MIN_EVENTS` events."""
        p = self.params
        if p.modality == "rgb":
            if frame.rgb is None:
                raise DataFormatError(None, "frames/rgb", "tracking.ncc.modality 'rgb' needs intensity frames; "
                                      "this sequence has none (use 'events')")
            x = crop_image(image_to_tensor(frame.rgb), window, size)
        else:
            events = crop_events(frame.events, window, size)
            if len(events) < MIN_EVENTS:
                return None
            x = count_frame(events, size, size)
            if p.channels == "sum":
                x = x.sum(dim=0, keepdim=True)
        if p.blur > 0:
            k = 2 * p.blur + 1
            x = F.avg_pool2d(x.unsqueeze(0), k, stride=1, padding=p.blur, count_include_pad=False)[0]
        return x

    def initialize(self, frame: TrackingFrame, box: np.ndarray | list[float]) -> None:
        """Cut the template around the ground-truth ``box`` (x, y, w, h) of the first frame."""
        b = np.asarray(box, dtype=np.float64).reshape(4)
        self.size = np.maximum(b[2:], 1.0)
        self.center = b[:2] + b[2:] / 2.0
        self.score = 1.0
        template = self._crop(frame, CropWindow.around(b, self.params.template_factor), self.params.template_px)
        # a template without events (or texture) matches nothing: track() then keeps the box
        self.template = template

    def track(self, frame: TrackingFrame) -> tuple[np.ndarray, float]:
        """Box (x, y, w, h) and the NCC score at the chosen placement (clipped to [0, 1]) for ``frame``."""
        p = self.params
        side = p.template_factor * float(np.sqrt(self.size[0] * self.size[1]))
        window = CropWindow(float(self.center[0]), float(self.center[1]), side * p.search_factor)
        search = self._crop(frame, window, self.search_px) if self.template is not None else None
        if search is None or self.template is None or float(self.template.std()) <= _EPS:
            self.score *= self.empty_score_decay
            return self.box, self.score
        ncc = normalised_cross_correlation(search, self.template)
        scored = (1.0 - p.window_influence) * ncc + p.window_influence * self._window
        iy, ix = np.unravel_index(int(scored.argmax()), tuple(scored.shape))
        cell = window.side / self.search_px  # image pixels per crop cell
        # placement (ix, iy) puts the template's centre at cell (ix + n/2, iy + n/2) of the search crop
        self.center = np.array([window.x0 + (ix + p.template_px / 2) * cell,
                                window.y0 + (iy + p.template_px / 2) * cell])
        self.center = np.clip(self.center, 0.0, [frame.width, frame.height])
        self.score = float(np.clip(float(ncc[iy, ix]), 0.0, 1.0))
        return self.box, self.score


__all__ = ["MIN_EVENTS", "NccTracker", "normalised_cross_correlation"]
