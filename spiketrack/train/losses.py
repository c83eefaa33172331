"""Tracking losses of the centre head (OSTrack recipe): focal loss on the heatmap, GIoU and L1 on the box.

OSTrack (Ye et al., ECCV 2022) weights them focal 1, GIoU 2, L1 5; the weights come from
``cfg.train.loss``. Boxes are (cx, cy, w, h) normalised to the search crop.
"""

from __future__ import annotations

import torch

from spiketrack.config import LossConfig
from spiketrack.models.heads import decode_boxes

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


def tracking_losses(
    outputs: dict[str, torch.Tensor],
    heatmap: torch.Tensor,
    boxes: torch.Tensor,
    weights: LossConfig,
    box_mask: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted loss terms and logging metrics of one forward pass.

    outputs: model outputs with 'score_map' ``[N, 1, Hf, Wf]`` and 'pred_boxes' ``[N, 4]`` (with
    ``weights.box_at == 'target'`` the boxes are decoded from 'size_map'/'offset_map' at the heatmap peak); heatmap
    ``[N, 1, Hf, Wf]``; boxes ``[N, 4]`` ground truth (cx, cy, w, h) normalised. Returns
    ``({'focal', 'giou', 'l1'} multiplied by their weights, {'iou'} detached)``.

    ``box_mask`` ``[N]`` (optional): 0 marks a negative sample (target absent, all-zero heatmap): it keeps its
    focal term but has no GIoU/L1 term; the box losses average over the samples with mask 1 (0 when none).
    """
    if weights.box_at == "target" and "size_map" in outputs and "offset_map" in outputs:
        pred = decode_boxes(heatmap, outputs["size_map"], outputs["offset_map"])  # heatmap peak = centre cell
    else:
        pred = outputs["pred_boxes"]
    if box_mask is not None and not bool(box_mask.bool().all()):
        keep = box_mask.to(pred.device).bool()
        pred, boxes = pred[keep], boxes[keep]
    if len(pred):
        g, iou = giou_loss(pred, boxes)
        l1 = l1_loss(pred, boxes)
    else:  # only negative samples: no box term (zero, still connected to the graph)
        g = l1 = iou = outputs["score_map"].float().sum() * 0.0
    terms = {
        "focal": weights.focal * focal_loss(outputs["score_map"], heatmap),
        "giou": weights.giou * g,
        "l1": weights.l1 * l1,
    }
    return terms, {"iou": iou.detach()}


__all__ = [
    "FOCAL_ALPHA",
    "FOCAL_BETA",
    "cxcywh_to_xyxy",
    "focal_loss",
    "giou",
    "giou_loss",
    "l1_loss",
    "tracking_losses",
]
