"""Center heads (score, size and offset maps) and the argmax box decoding shared by teacher and student.

The head follows OSTrack's center predictor (Ye et al., ECCV 2022): three conv branches predict a
centre heatmap, the normalised box size at each cell and the sub-cell offset of the centre; the box is
read at the heatmap's argmax. The ANN head serves the ViT teacher; the spiking head serves the student
(spiking conv layers over T timesteps, averaged over time before analog final 1x1 projections). The score map's
training loss, CenterNet's focal loss (:func:`focal_loss`), is here too: the tracking loss and the response
distillation of HDETrack both use it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from spiketrack.models.spiking.neurons import NeuronFactory


FOCAL_ALPHA = 2  # CenterNet focal loss exponent on (1 - p) at positives (Zhou et al. 2019)
FOCAL_BETA = 4  # CenterNet exponent on (1 - target) that down-weights negatives near the centre


def focal_loss(pred: torch.Tensor, target: torch.Tensor, alpha: int = FOCAL_ALPHA, beta: int = FOCAL_BETA) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss.

    pred: probabilities ``[B, 1, H, W]`` in (0, 1); target: Gaussian heatmaps of the same shape with 1 at
    each centre. Loss = -(sum_pos (1-p)^a log p + sum_neg (1-y)^b p^a log(1-p)) / num_pos (or the negative
    part alone when there is no positive).
    """
    pred = pred.float().clamp(1e-4, 1 - 1e-4)
    target = target.float()
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = (torch.log(pred) * (1 - pred).pow(alpha) * pos).sum()
    neg_loss = (torch.log(1 - pred) * pred.pow(alpha) * (1 - target).pow(beta) * neg).sum()
    num_pos = pos.sum()
    if num_pos.item() == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def decode_boxes(score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """Boxes at the score argmax.

    score_map [B, 1, Hf, Wf], size_map [B, 2, Hf, Wf] (w, h normalised), offset_map [B, 2, Hf, Wf]
    (x, y offset in cells) -> [B, 4] (cx, cy, w, h) normalised to the search crop.
    """
    b, _, hf, wf = score_map.shape
    idx = score_map.flatten(1).argmax(dim=1)  # [B]
    iy = torch.div(idx, wf, rounding_mode="floor")
    ix = idx - iy * wf
    gather = idx.view(b, 1, 1).expand(b, 2, 1)
    size = size_map.flatten(2).gather(2, gather).squeeze(2)  # [B, 2]
    offset = offset_map.flatten(2).gather(2, gather).squeeze(2)
    cx = (ix.to(offset.dtype) + offset[:, 0]) / wf
    cy = (iy.to(offset.dtype) + offset[:, 1]) / hf
    return torch.stack([cx, cy, size[:, 0], size[:, 1]], dim=1)


def _head_outputs(score: torch.Tensor, size: torch.Tensor, offset: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activations as OSTrack's center predictor: sigmoid score (clamped away from 0/1) and size, raw offset."""
    score_map = torch.sigmoid(score).clamp(1e-4, 1 - 1e-4)
    size_map = torch.sigmoid(size)
    return {
        "score_map": score_map,
        "size_map": size_map,
        "offset_map": offset,
        "pred_boxes": decode_boxes(score_map, size_map, offset),
    }


# Initial score-map probability: the score projection's bias starts at -log((1 - p) / p) so the focal loss
# does not begin with every cell at 0.5 (CenterNet, Zhou et al. 2019: bias -2.19, i.e. p = 0.1).
SCORE_PRIOR = 0.1


def init_score_bias(proj: nn.Conv2d, prior: float = SCORE_PRIOR, channels: int | None = None) -> None:
    """Set the score projection's bias to the logit of ``prior``; only its first ``channels`` outputs when given
    (one output conv that stacks the score map with the size and offset maps)."""
    bias = proj.bias if channels is None else proj.bias[:channels]
    nn.init.constant_(bias, -math.log((1 - prior) / prior))


def _branch_channels(channels: int) -> list[int]:
    """Hidden widths of one branch: channels, /2, /4, /8 (OSTrack's center head)."""
    return [channels, max(channels // 2, 1), max(channels // 4, 1), max(channels // 8, 1)]


class CenterHead(nn.Module):
    """ANN center head: per branch 4 x (conv3x3-BN-ReLU) then a 1x1 projection."""

    def __init__(self, in_channels: int, channels: int = 256) -> None:
        super().__init__()
        widths = _branch_channels(channels)

        def branch(out: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            c = in_channels
            for w in widths:
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            layers.append(nn.Conv2d(c, out, 1))
            return nn.Sequential(*layers)

        self.score = branch(1)
        self.size = branch(2)
        self.offset = branch(2)
        init_score_bias(self.score_proj)

    @property
    def score_proj(self) -> nn.Conv2d:
        """The score branch's final 1x1 projection (its bias starts at :data:`SCORE_PRIOR`)."""
        return self.score[-1]

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x: [B, C, Hf, Wf] search features -> score/size/offset maps [B, 1|2|2, Hf, Wf] and pred_boxes [B, 4];
        ``prior`` [B, 1, Hf, Wf] (optional) is added to the score logits (:class:`ScorePrior`)."""
        score = self.score(x)
        return _head_outputs(score if prior is None else score + prior, self.size(x), self.offset(x))


class TimeAveragedCenterHead(CenterHead):
    """ANN center head on the time average of a spiking model's head input (the student's ``analog_head``).

    The spiking head quantises every hidden layer to D + 1 levels, down to branches of 4 channels; this head keeps
    them analog. Its convolutions see dense inputs, so the energy counter charges them as MACs.
    """

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x: [T, B, C, Hf, Wf] -> the maps of :meth:`CenterHead.forward` on the mean over T."""
        return super().forward(x.mean(dim=0), prior)


class SpikingBranch(nn.Module):
    """One spiking head branch: 4 x (neuron -> conv3x3 -> BN) over T, mean over T, analog 1x1 projection."""

    def __init__(self, in_channels: int, channels: int, out: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.neurons = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = in_channels
        for w in _branch_channels(channels):
            self.neurons.append(neuron())
            self.convs.append(nn.Conv2d(c, w, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(w))
            c = w
        self.proj = nn.Conv2d(c, out, 1)  # input is the time average: analog values (MACs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, Hf, Wf] membrane input -> [B, out, Hf, Wf]."""
        t, b = x.shape[:2]
        for neuron, conv, norm in zip(self.neurons, self.convs, self.norms, strict=True):
            s = neuron(x).flatten(0, 1)
            x = norm(conv(s))
            x = x.view(t, b, *x.shape[1:])
        return self.proj(x.mean(dim=0))


class SpikingCenterHead(nn.Module):
    """Spiking center head: three spiking branches whose outputs are averaged over the T timesteps."""

    def __init__(self, in_channels: int, channels: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.score = SpikingBranch(in_channels, channels, 1, neuron)
        self.size = SpikingBranch(in_channels, channels, 2, neuron)
        self.offset = SpikingBranch(in_channels, channels, 2, neuron)
        init_score_bias(self.score_proj)

    @property
    def score_proj(self) -> nn.Conv2d:
        """The score branch's final analog 1x1 projection (its bias starts at :data:`SCORE_PRIOR`)."""
        return self.score.proj

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x: [T, B, C, Hf, Wf] -> score/size/offset maps [B, 1|2|2, Hf, Wf] and pred_boxes [B, 4]; ``prior``
        [B, 1, Hf, Wf] (optional) is added to the analog score logits (:class:`ScorePrior`)."""
        score = self.score(x)
        return _head_outputs(score if prior is None else score + prior, self.size(x), self.offset(x))


class ScorePrior(nn.Module):
    """A learned multiple of a template-match map added to the head's score logits: ``w * match``.

    With the input-level NCC (``models/correlation.py``) as ``match``, the untrained tracker already scores where the
    template's pattern is (the NCC matcher's choice), and training learns the head's correction on top of it rather
    than having to discover the match among its other inputs. ``initial`` is w at the start (the logit gap between
    a perfect match and none). One scalar: its cost is one multiply-add per cell.
    """

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(float(initial)))

    def forward(self, match: torch.Tensor) -> torch.Tensor:
        """match [B, 1, Hf, Wf] -> [B, 1, Hf, Wf]."""
        return self.weight * match


__all__ = [
    "FOCAL_ALPHA",
    "FOCAL_BETA",
    "SCORE_PRIOR",
    "CenterHead",
    "ScorePrior",
    "SpikingBranch",
    "SpikingCenterHead",
    "TimeAveragedCenterHead",
    "decode_boxes",
    "focal_loss",
    "init_score_bias",
]
