"""Tracking losses of the centre head as a table of terms (OSTrack recipe, plus template-swap negatives).

OSTrack (Ye et al., ECCV 2022): focal loss on the heatmap, GIoU and L1 on the box, weighted 1 / 2 / 5. Each term
is a class of :data:`TRACKING_TERMS` owning its settings (the section ``train.loss.<name>``: ``{enabled, weight}``),
its checks and its weight; :class:`TrackingLoss` sums the enabled ones. A new tracking loss: one class here and one
row in the table, plus its settings section in ``LossConfig`` (config.py). Boxes are (cx, cy, w, h) normalised to
the search crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import torch

from spiketrack.config import LossConfig
from spiketrack.errors import ConfigError
from spiketrack.models.heads import FOCAL_ALPHA, FOCAL_BETA, decode_boxes, focal_loss


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` (cx, cy, w, h) -> (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def giou(pred_xyxy: torch.Tensor, target_xyxy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised IoU (Rezatofighi et al., CVPR 2019) and IoU of paired boxes ``[N, 4]`` -> ``[N]``, ``[N]``."""
    p, t = pred_xyxy.float(), target_xyxy.float()
    area_p = (p[:, 2] - p[:, 0]).clamp(min=0) * (p[:, 3] - p[:, 1]).clamp(min=0)
    area_t = (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)
    lt = torch.max(p[:, :2], t[:, :2])
    rb = torch.min(p[:, 2:], t[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-7)
    hull = (torch.max(p[:, 2:], t[:, 2:]) - torch.min(p[:, :2], t[:, :2])).clamp(min=0).prod(dim=1)
    return iou - (hull - union) / hull.clamp(min=1e-7), iou


def giou_loss(pred_cxcywh: torch.Tensor, target_cxcywh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``1 - GIoU`` of ``[N, 4]`` normalised boxes, and the mean IoU (for logging)."""
    g, iou = giou(cxcywh_to_xyxy(pred_cxcywh), cxcywh_to_xyxy(target_cxcywh))
    return (1 - g).mean(), iou.mean()


def l1_loss(pred_cxcywh: torch.Tensor, target_cxcywh: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of the four normalised box numbers (``[N, 4]``)."""
    return (pred_cxcywh.float() - target_cxcywh.float()).abs().mean()


def swap_templates(batch: dict) -> tuple[dict, torch.Tensor] | None:
    """The batch's first search frame per sample with the template of the previous sample (batch rolled by one).

    Returns (swapped batch with ``n = 1``, keep mask [B]): a sample keeps its swap only when the foreign template
    comes from another sequence (a template of the same scene may show an object inside the crop). None when
    no sample qualifies (batch of one, or one sequence).
    """
    sequences = batch["sequence"]
    b = len(sequences)
    if b < 2:
        return None
    keep = torch.tensor([sequences[i] != sequences[i - 1] for i in range(b)])
    if not bool(keep.any()):
        return None
    swapped: dict = {}
    for key, value in batch.items():
        if key in ("template_bins", "extra_template_bins"):
            swapped[key] = value.roll(1, dims=0)
        elif key == "template":
            swapped[key] = {k: v.roll(1, dims=0) for k, v in value.items()}
        elif key == "search_bins":
            swapped[key] = value[:, :1]
        elif key == "search":
            swapped[key] = {k: v[:, :1] for k, v in value.items()}
    return swapped, keep


# the model's forward on a collated batch with n search frames per sample -> outputs (spiketrack.train.trainer.run_model)
RunFn = Callable[[dict, int], dict]


def template_swap_loss(run: RunFn, batch: dict) -> torch.Tensor | None:
    """Focal loss of the first search crops tracked with a foreign template against an all-zero heatmap, per
    sample (``train.loss.template_swap``); ``run(batch, n)`` is the model's forward. None when the batch has no
    sample to swap (see :func:`swap_templates`)."""
    swap = swap_templates(batch)
    if swap is None:
        return None
    swapped, keep = swap
    score = run(swapped, 1)["score_map"]
    score = score[keep.to(score.device)]
    return focal_loss(score, torch.zeros_like(score)) / len(score)


@dataclass
class LossInputs:
    """What a tracking term may read for one micro-batch of N = B*n (template, search) pairs.

    ``outputs``: the model's outputs ('score_map' ``[N, 1, Hf, Wf]``, 'pred_boxes' ``[N, 4]``, 'size_map' and
    'offset_map'); ``heatmap`` ``[N, 1, Hf, Wf]``; ``boxes`` ``[N, 4]`` ground truth; ``box_mask`` ``[N]`` (0 =
    negative pair, no box loss; None: all 1); ``box_at`` where the boxes are read (``train.loss.box_at``);
    ``run`` and ``batch``: the model's forward and the collated batch (terms that run the model again).
    """

    outputs: dict[str, Any]
    heatmap: torch.Tensor
    boxes: torch.Tensor
    box_mask: torch.Tensor | None = None
    box_at: str = "argmax"
    run: RunFn | None = None
    batch: dict | None = None

    @cached_property
    def box_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted, true) boxes ``[M, 4]`` of the positive pairs; with ``box_at == 'target'`` the prediction is
        read from 'size_map'/'offset_map' at the heatmap peak (the true centre cell)."""
        out = self.outputs
        if self.box_at == "target" and "size_map" in out and "offset_map" in out:
            pred = decode_boxes(self.heatmap, out["size_map"], out["offset_map"])  # heatmap peak = centre cell
        else:
            pred = out["pred_boxes"]
        boxes = self.boxes
        if self.box_mask is not None and not bool(self.box_mask.bool().all()):
            keep = self.box_mask.to(pred.device).bool()
            pred, boxes = pred[keep], boxes[keep]
        return pred, boxes

    def zero(self) -> torch.Tensor:
        """A zero on the outputs' graph (a term with nothing to measure still logs a value and keeps DDP in step)."""
        return self.outputs["score_map"].float().sum() * 0.0


class TrackingTerm:
    """One tracking-loss term (module docstring). Subclasses set ``name`` and implement :meth:`loss`."""

    name: ClassVar[str]

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        if settings.weight < 0:
            raise ConfigError(f"train.loss.{self.name}.weight: expected a weight >= 0, got {settings.weight}")

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        """The unweighted term."""
        raise NotImplementedError

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        return self.settings.weight * self.loss(inputs)


class FocalTerm(TrackingTerm):
    """CenterNet focal loss of the score map against the Gaussian heatmap (negative pairs: all-zero heatmap)."""

    name = "focal"

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        return focal_loss(inputs.outputs["score_map"], inputs.heatmap)


class GIoUTerm(TrackingTerm):
    """Mean ``1 - GIoU`` of the positive pairs' boxes (zero when the micro-batch has none)."""

    name = "giou"

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        pred, boxes = inputs.box_pairs
        return giou_loss(pred, boxes)[0] if len(pred) else inputs.zero()


class L1Term(TrackingTerm):
    """Mean absolute error of the positive pairs' four box numbers (zero when the micro-batch has none)."""

    name = "l1"

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        pred, boxes = inputs.box_pairs
        return l1_loss(pred, boxes) if len(pred) else inputs.zero()


class TemplateSwapTerm(TrackingTerm):
    """Template-swap negatives (:func:`template_swap_loss`; zero when no sample of the batch can be swapped)."""

    name = "template_swap"

    def loss(self, inputs: LossInputs) -> torch.Tensor:
        if inputs.run is None or inputs.batch is None:
            raise ValueError("train.loss.template_swap runs the model again: LossInputs needs run and batch")
        swap = template_swap_loss(inputs.run, inputs.batch)
        return swap if swap is not None else inputs.zero()


# train.loss.<name> -> its term; the one place a tracking loss is added (with its section in LossConfig)
TRACKING_TERMS: dict[str, type[TrackingTerm]] = {
    "focal": FocalTerm,
    "giou": GIoUTerm,
    "l1": L1Term,
    "template_swap": TemplateSwapTerm,
}


class TrackingLoss:
    """The enabled terms of ``cfg.train.loss`` (:data:`TRACKING_TERMS`), each weighted."""

    def __init__(self, cfg: LossConfig) -> None:
        if cfg.box_at not in ("argmax", "target"):
            raise ConfigError(f"train.loss.box_at: expected 'argmax' or 'target', got {cfg.box_at!r}")
        self.cfg = cfg
        self.terms = {name: term(getattr(cfg, name)) for name, term in TRACKING_TERMS.items()
                      if getattr(cfg, name).enabled}

    def __call__(self, inputs: LossInputs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(weighted terms by name, ``{'iou'}`` of the positive pairs' boxes, detached, 0 when none)."""
        terms = {name: term(inputs) for name, term in self.terms.items()}
        pred, boxes = inputs.box_pairs
        iou = giou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(boxes))[1].mean() if len(pred) else inputs.zero()
        return terms, {"iou": iou.detach()}


def tracking_losses(
    outputs: dict[str, torch.Tensor],
    heatmap: torch.Tensor,
    boxes: torch.Tensor,
    weights: LossConfig,
    box_mask: torch.Tensor | None = None,
    *,
    run: RunFn | None = None,
    batch: dict | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted loss terms and logging metrics of one forward pass (:class:`TrackingLoss` of ``weights``).

    outputs: model outputs with 'score_map' ``[N, 1, Hf, Wf]`` and 'pred_boxes' ``[N, 4]`` (with
    ``weights.box_at == 'target'`` the boxes are decoded from 'size_map'/'offset_map' at the heatmap peak); heatmap
    ``[N, 1, Hf, Wf]``; boxes ``[N, 4]`` ground truth (cx, cy, w, h) normalised. Returns
    ``({'focal', 'giou', 'l1', ...} of the enabled terms, multiplied by their weights, {'iou'} detached)``.

    ``box_mask`` ``[N]`` (optional): 0 marks a negative sample (target absent, all-zero heatmap): it keeps its
    focal term but has no GIoU/L1 term; the box losses average over the samples with mask 1 (0 when none).
    ``run`` / ``batch``: the model's forward and the collated batch, for terms that run the model again
    (``template_swap``).
    """
    inputs = LossInputs(outputs, heatmap, boxes, box_mask, weights.box_at, run, batch)
    return TrackingLoss(weights)(inputs)


__all__ = [
    "FOCAL_ALPHA",
    "FOCAL_BETA",
    "TRACKING_TERMS",
    "FocalTerm",
    "GIoUTerm",
    "L1Term",
    "LossInputs",
    "TemplateSwapTerm",
    "TrackingLoss",
    "TrackingTerm",
    "cxcywh_to_xyxy",
    "focal_loss",
    "giou",
    "giou_loss",
    "l1_loss",
    "swap_templates",
    "template_swap_loss",
    "tracking_losses",
]
