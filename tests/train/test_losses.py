"""Tracking losses on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.config import LossConfig
from spiketrack.train.losses import focal_loss, giou_loss, l1_loss, tracking_losses


def test_focal_loss_tiny_heatmap() -> None:
    pred = torch.tensor([[0.5, 0.2], [0.1, 0.4]]).view(1, 1, 2, 2)
    target = torch.tensor([[1.0, 0.5], [0.0, 0.0]]).view(1, 1, 2, 2)
    pos = (1 - 0.5) ** 2 * math.log(0.5)
    neg = (
        math.log(1 - 0.2) * 0.2**2 * (1 - 0.5) ** 4
        + math.log(1 - 0.1) * 0.1**2 * 1.0
        + math.log(1 - 0.4) * 0.4**2 * 1.0
    )
    assert focal_loss(pred, target).item() == pytest.approx(-(pos + neg), rel=1e-5)


def test_focal_loss_normalised_by_positives_and_no_positive_case() -> None:
    pred = torch.full((2, 1, 2, 2), 0.3)
    target = torch.zeros(2, 1, 2, 2)
    neg_only = -(math.log(0.7) * 0.3**2) * 8
    assert focal_loss(pred, target).item() == pytest.approx(neg_only, rel=1e-5)
    target[:, 0, 0, 0] = 1.0
    expected = -(2 * 0.7**2 * math.log(0.3) + 6 * math.log(0.7) * 0.3**2) / 2
    assert focal_loss(pred, target).item() == pytest.approx(expected, rel=1e-5)


def test_giou_known_boxes() -> None:
    # xyxy (0,0,2,2) vs (1,1,3,3): IoU 1/7, hull 9, union 7 -> GIoU = 1/7 - 2/9
    a = torch.tensor([[1.0, 1.0, 2.0, 2.0]])
    b = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    loss, iou = giou_loss(a, b)
    assert iou.item() == pytest.approx(1 / 7)
    assert loss.item() == pytest.approx(1 - (1 / 7 - 2 / 9))
    # disjoint (0,0,1,1) vs (2,0,3,1): IoU 0, hull 3, union 2 -> GIoU = -1/3
    loss, iou = giou_loss(torch.tensor([[0.5, 0.5, 1.0, 1.0]]), torch.tensor([[2.5, 0.5, 1.0, 1.0]]))
    assert iou.item() == 0.0
    assert loss.item() == pytest.approx(1 + 1 / 3)
    same, iou = giou_loss(b, b)
    assert same.item() == pytest.approx(0.0, abs=1e-7) and iou.item() == pytest.approx(1.0)


def test_weighted_terms() -> None:
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.6, 0.5, 0.2, 0.4]])
    score = torch.full((1, 1, 2, 2), 0.5)
    heat = torch.zeros(1, 1, 2, 2)
    heat[0, 0, 1, 1] = 1
    terms, metrics = tracking_losses(
        {"score_map": score, "pred_boxes": pred}, heat, gt, LossConfig()
    )
    assert terms["l1"].item() == pytest.approx(5 * l1_loss(pred, gt).item())
    assert terms["l1"].item() == pytest.approx(5 * (0.1 + 0.2) / 4)
    assert terms["giou"].item() == pytest.approx(2 * giou_loss(pred, gt)[0].item())
    assert terms["focal"].item() == pytest.approx(focal_loss(score, heat).item())
    assert set(terms) == {"focal", "giou", "l1"} and "iou" in metrics


def test_box_losses_at_the_target_centre_cell() -> None:
    # 2x2 grid, target centre in cell (row 1, col 0); the score peaks elsewhere (row 0, col 1)
    gt = torch.tensor([[0.3, 0.8, 0.2, 0.4]])  # cx 0.3 -> col 0 + offset 0.6; cy 0.8 -> row 1 + offset 0.6
    heat = torch.zeros(1, 1, 2, 2)
    heat[0, 0, 1, 0] = 1
    score = torch.full((1, 1, 2, 2), 0.1)
    score[0, 0, 0, 1] = 0.9
    size = torch.zeros(1, 2, 2, 2)
    offset = torch.zeros(1, 2, 2, 2)
    size[0, :, 1, 0] = torch.tensor([0.2, 0.4])  # exact at the target cell, zero size at the score peak
    offset[0, :, 1, 0] = torch.tensor([0.6, 0.6])
    out = {"score_map": score, "size_map": size, "offset_map": offset,
           "pred_boxes": torch.tensor([[0.75, 0.25, 0.0, 0.0]])}
    at_target, metrics = tracking_losses(out, heat, gt, LossConfig(box_at="target"))
    assert at_target["l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert at_target["giou"].item() == pytest.approx(0.0, abs=1e-6)
    assert metrics["iou"].item() == pytest.approx(1.0)
    at_peak, _ = tracking_losses(out, heat, gt, LossConfig(box_at="argmax"))
    assert at_peak["l1"].item() == pytest.approx(5 * (0.45 + 0.55 + 0.2 + 0.4) / 4)
