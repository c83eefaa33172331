"""Center heads and argmax box decoding."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.config import NeuronConfig
from spiketrack.models.heads import (
    SCORE_PRIOR,
    CenterHead,
    SpikingCenterHead,
    TimeAveragedCenterHead,
    decode_boxes,
    init_score_bias,
)
from spiketrack.models.spiking.bins import check_event_bins, time_mean_tokens
from spiketrack.models.spiking.neurons import neuron_factory


def test_decode_boxes_reads_size_and_offset_at_the_score_argmax() -> None:
    score = torch.zeros(2, 1, 8, 8)
    size = torch.full((2, 2, 8, 8), 0.9)
    offset = torch.full((2, 2, 8, 8), 0.9)
    score[0, 0, 2, 5] = 1.0  # row 2, column 5
    size[0, :, 2, 5] = torch.tensor([0.3, 0.4])
    offset[0, :, 2, 5] = torch.tensor([0.25, 0.5])
    score[1, 0, 7, 0] = 1.0
    size[1, :, 7, 0] = torch.tensor([0.1, 0.2])
    offset[1, :, 7, 0] = torch.tensor([0.0, -0.5])
    boxes = decode_boxes(score, size, offset)
    expected = torch.tensor([[(5 + 0.25) / 8, (2 + 0.5) / 8, 0.3, 0.4], [0.0 / 8, (7 - 0.5) / 8, 0.1, 0.2]])
    torch.testing.assert_close(boxes, expected)


def test_decode_boxes_non_square_map() -> None:
    score = torch.zeros(1, 1, 4, 6)
    score[0, 0, 3, 4] = 2.0
    boxes = decode_boxes(score, torch.ones(1, 2, 4, 6) * 0.5, torch.zeros(1, 2, 4, 6))
    torch.testing.assert_close(boxes, torch.tensor([[4 / 6, 3 / 4, 0.5, 0.5]]))


def test_center_head_shapes_and_ranges() -> None:
    head = CenterHead(16, channels=16).eval()
    out = head(torch.randn(3, 16, 5, 5))
    assert out["score_map"].shape == (3, 1, 5, 5)
    assert out["size_map"].shape == (3, 2, 5, 5)
    assert out["offset_map"].shape == (3, 2, 5, 5)
    assert out["pred_boxes"].shape == (3, 4)
    assert ((out["score_map"] > 0) & (out["score_map"] < 1)).all()
    assert ((out["size_map"] > 0) & (out["size_map"] < 1)).all()
    torch.testing.assert_close(out["pred_boxes"], decode_boxes(out["score_map"], out["size_map"], out["offset_map"]))


def test_spiking_head_projects_the_time_average() -> None:
    torch.manual_seed(0)
    head = SpikingCenterHead(8, 16, neuron_factory(NeuronConfig())).eval()
    seen: dict[str, torch.Tensor] = {}
    branch = head.score
    branch.norms[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("hidden", o))
    branch.proj.register_forward_hook(lambda m, i, o: seen.__setitem__("proj_in", i[0]))
    out = head(torch.randn(3, 2, 8, 4, 4) * 3)
    assert out["score_map"].shape == (2, 1, 4, 4) and out["pred_boxes"].shape == (2, 4)
    hidden = seen["hidden"].view(3, 2, *seen["hidden"].shape[1:])  # [T*B, C, H, W] -> [T, B, C, H, W]
    torch.testing.assert_close(seen["proj_in"], hidden.mean(dim=0))


def test_score_projection_starts_at_the_prior() -> None:
    # CenterNet's prior: bias = -log((1 - 0.1) / 0.1) = -2.1972 (Zhou et al. 2019)
    head = CenterHead(8, 16)
    assert head.score[-1].bias.item() == pytest.approx(-math.log(9.0), abs=1e-6)
    with torch.no_grad():
        head.score[-1].weight.zero_()
        out = head.eval()(torch.rand(1, 8, 4, 4))
    assert torch.allclose(out["score_map"], torch.full((1, 1, 4, 4), SCORE_PRIOR))


def test_time_averaged_head_is_the_ann_head_on_the_mean_over_time() -> None:
    torch.manual_seed(0)
    head = TimeAveragedCenterHead(8, 16).eval()
    plain = CenterHead(8, 16).eval()
    plain.load_state_dict(head.state_dict())
    x = torch.randn(3, 2, 8, 4, 4)  # [T, B, C, H, W]
    prior = torch.randn(2, 1, 4, 4)
    out, expected = head(x, prior), plain(x.mean(dim=0), prior)
    for key in ("score_map", "size_map", "offset_map", "pred_boxes"):
        torch.testing.assert_close(out[key], expected[key])


def test_score_bias_of_a_stacked_output_conv_sets_its_score_channel_only() -> None:
    conv = torch.nn.Conv2d(4, 5, 1)  # score, size (2), offset (2) from one conv
    torch.nn.init.zeros_(conv.bias)
    init_score_bias(conv, channels=1)
    assert conv.bias[0].item() == pytest.approx(-math.log((1 - SCORE_PRIOR) / SCORE_PRIOR))
    assert conv.bias[1:].abs().sum().item() == 0.0


def test_event_bins_are_checked_by_name_and_averaged_into_tokens() -> None:
    with pytest.raises(ValueError, match=r"search_bins: expected event bins \[T, B, 2, H, W\], got shape \(2, 1, 3, 4, 4\)"):
        check_event_bins(torch.zeros(2, 1, 3, 4, 4), "search_bins")
    check_event_bins(torch.zeros(2, 1, 2, 4, 4), "search_bins")
    x = torch.arange(2 * 1 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 1, 3, 2, 2)  # [T, B, C, h, w]
    tokens = time_mean_tokens(x)
    assert tokens.shape == (1, 4, 3)
    assert tokens[0, 1, 2].item() == (x[0, 0, 2, 0, 1] + x[1, 0, 2, 0, 1]).item() / 2  # token 1 = cell (0, 1)
