"""Distillation losses: known zeros, positivity and hand-checked values."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.config import DistillConfig, DistillTerm
from spiketrack.distill.align import FeatureAlign
from spiketrack.distill.fourier import fourier_kd_v2
from spiketrack.distill.losses import (
    DistillLoss,
    feature_kd,
    fourier_kd,
    response_kd,
    similarity_kd,
    temporal_spectrum,
)
from spiketrack.errors import ConfigError


def _maps(seed: int, shape=(2, 3, 4, 4)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 0.9 + 0.05


def test_fourier_zero_for_identical_positive_otherwise() -> None:
    a = _maps(0)
    assert fourier_kd(a, a.clone()).item() == 0.0
    assert fourier_kd(a, _maps(1)).item() > 0.0
    # per-frame normalisation: a constant gain per map changes nothing
    assert fourier_kd(a * 3.0, a).item() == pytest.approx(0.0, abs=1e-6)


def test_temporal_spectrum_hand_computed() -> None:
    # one cell carries all mass in frames 0 and 2 and none in frame 1 -> signal [1, 0, 1] at that cell
    s = torch.full((1, 3, 1, 2), 1e-9)
    s[0, 0, 0, 0] = s[0, 2, 0, 0] = 1.0
    s[0, 1, 0, 1] = 1.0
    spec = temporal_spectrum(s)
    assert spec.shape == (1, 2, 1, 2)
    # rfft([1, 0, 1]) = [2, 1 + e^{-4 pi i / 3}] -> |.| = [2, 1]
    assert spec[0, 0, 0, 0].item() == pytest.approx(2.0, rel=1e-6)
    assert spec[0, 1, 0, 0].item() == pytest.approx(1.0, rel=1e-6)


def test_response_kd_zero_for_identical_and_kl_value() -> None:
    t = _maps(2, (2, 1, 4, 4))
    assert response_kd(t, t.clone()).item() == pytest.approx(0.0, abs=1e-6)
    # two cells: teacher logits (0, log 3) -> (1/4, 3/4); student uniform -> KL = sum p log(p / 0.5)
    teacher = torch.tensor([0.5, 0.75]).view(1, 1, 1, 2)
    student = torch.tensor([0.5, 0.5]).view(1, 1, 1, 2)
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert response_kd(student, teacher).item() == pytest.approx(kl, rel=1e-4)


def test_similarity_kd_maps_token_grids_by_position() -> None:
    # teacher 4x4 grid; student 2x2 grid whose tokens equal the teacher's 2x2 block averages -> zero loss
    teacher = torch.randn(2, 16, 8)
    grid = teacher.transpose(1, 2).reshape(2, 8, 4, 4)
    pooled = torch.nn.functional.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)  # [2, 4, 8]
    assert similarity_kd([pooled], [teacher]).item() == pytest.approx(0.0, abs=1e-6)
    # tokens in a different order (naive index tiling) do not match
    assert similarity_kd([pooled[:, [3, 2, 1, 0]]], [teacher]).item() > 1e-4
    # spiking layout [T, B, N, C] is averaged over T
    spiking = torch.stack([pooled, pooled])
    assert similarity_kd([spiking], [teacher]).item() == pytest.approx(0.0, abs=1e-6)


def test_similarity_kd_attention_source_keeps_rows_stochastic() -> None:
    att_t = torch.softmax(torch.randn(1, 2, 16, 16), dim=-1)
    # student keys sum-pooled from the teacher -> identical after resampling
    att_s = att_t.reshape(1, 2, 16, 4, 4).reshape(1, 2, 16, 2, 2, 2, 2).sum(dim=(4, 6)).reshape(1, 2, 16, 4)
    q = att_s.reshape(1, 2, 4, 4, 4).reshape(1, 2, 2, 2, 2, 2, 4).mean(dim=(3, 5)).reshape(1, 2, 4, 4)
    assert similarity_kd([q], [att_t], "attentions").item() == pytest.approx(0.0, abs=1e-6)


def test_feature_kd_learnable_projection() -> None:
    torch.manual_seed(0)
    student = [torch.randn(2, 16, 6)]
    teacher = [torch.randn(2, 16, 10)]
    align = FeatureAlign([6], [10])
    before = feature_kd(student, teacher, align)
    opt = torch.optim.SGD(align.parameters(), lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        loss = feature_kd(student, teacher, align)
        loss.backward()
        opt.step()
    assert loss.item() < before.item()


def test_distill_loss_terms_switches_and_weights() -> None:
    cfg = DistillConfig(
        similarity=DistillTerm(True, 2.0),
        feature=DistillTerm(False, 1.0),
        response=DistillTerm(True, 0.5),
        fourier=DistillTerm(True, 3.0),
    )
    loss = DistillLoss(cfg, [], [], num_search=3)
    s = {"score_map": _maps(3, (6, 1, 4, 4)), "features": [torch.randn(6, 4, 8)]}
    t = {"score_map": _maps(4, (6, 1, 4, 4)), "features": [torch.randn(6, 16, 12)]}
    out = loss(s, t)
    assert set(out) == {"kd_similarity", "kd_response", "kd_fourier"}
    s_maps = s["score_map"].reshape(2, 3, 4, 4)
    t_maps = t["score_map"].reshape(2, 3, 4, 4)
    assert out["kd_fourier"].item() == pytest.approx(3.0 * fourier_kd(s_maps, t_maps).item(), rel=1e-6)
    assert out["kd_response"].item() == pytest.approx(0.5 * response_kd(s["score_map"], t["score_map"]).item())
    with pytest.raises(ConfigError, match="num_search"):
        DistillLoss(cfg, [], [], num_search=1)


def _info(dims: list[int]) -> list[dict]:
    return [{"num_chs": c, "module": f"blocks.{i}"} for i, c in enumerate(dims)]


def test_relative_depth_pairing_picks_teacher_layers_by_depth() -> None:
    # student 2 blocks (widths 4, 6), teacher 4 layers (widths 10, 11, 12, 13): block 0 <-> layer 1, 1 <-> 3
    s_info, t_info = _info([4, 6]), _info([10, 11, 12, 13])
    on = DistillTerm(True, 1.0)
    off = DistillTerm(False, 1.0)
    cfg = DistillConfig(similarity=on, feature=on, response=off, feature_layers=[0, 1], layer_pairing="relative_depth")
    loss = DistillLoss.from_feature_info(cfg, s_info, t_info, num_search=1)
    assert loss.teacher_layers == [1, 3]
    assert [p.out_features for p in loss.align.proj] == [11, 13]
    torch.manual_seed(0)
    s = {"features": [torch.randn(2, 4, 4), torch.randn(2, 4, 6)]}
    t = {"features": [torch.randn(2, 16, c) for c in (10, 11, 12, 13)]}
    out = loss(s, t)
    expected = similarity_kd(s["features"], [t["features"][1], t["features"][3]])
    assert out["kd_similarity"].item() == pytest.approx(expected.item(), rel=1e-6)
    # by index (the default) the same config pairs 0 <-> 0 and 1 <-> 1
    index = DistillLoss.from_feature_info(DistillConfig(feature_layers=[0, 1]), s_info, t_info, num_search=1)
    assert index.teacher_layers == [0, 1] and [p.out_features for p in index.align.proj] == [10, 11]


def test_optional_terms_ot_temporal_and_hdetrack_fourier() -> None:
    off = DistillTerm(False, 1.0)
    cfg = DistillConfig(
        similarity=off,
        feature=DistillTerm(True, 1.0),
        response=off,
        fourier=DistillTerm(True, 2.0),
        temporal=DistillTerm(True, 0.5),
        spatial_align="ot",
        fourier_mode="hdetrack_v2",
    )
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 8]), num_search=3)
    assert loss.temporal is not None and loss.temporal.proj.in_features == 6
    torch.manual_seed(0)
    s = {"score_map": _maps(3, (6, 1, 4, 4)), "features": [torch.randn(6, 4, 4), torch.randn(6, 4, 6)]}
    t = {"score_map": _maps(4, (6, 1, 4, 4)), "features": [torch.randn(6, 16, 8) for _ in range(3)]}
    out = loss(s, t)
    assert set(out) == {"kd_feature", "kd_fourier", "kd_temporal"}
    s_maps, t_maps = s["score_map"].reshape(2, 3, 4, 4), t["score_map"].reshape(2, 3, 4, 4)
    assert out["kd_fourier"].item() == pytest.approx(2.0 * fourier_kd_v2(s_maps, t_maps).item(), rel=1e-6)
    sum(out.values()).backward()
    assert all(p.grad is not None for p in loss.align.parameters())
    assert loss.temporal.out.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="num_search"):
        DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 8]), num_search=1)


def test_defaults_leave_the_new_options_off() -> None:
    cfg = DistillConfig()
    assert (cfg.layer_pairing, cfg.spatial_align, cfg.fourier_mode) == ("index", "pool", "amplitude")
    assert not cfg.temporal.enabled and not cfg.fourier.enabled


def test_correlation_kd_regresses_projected_student_map_onto_normalised_teacher_map() -> None:
    off = DistillTerm(False, 1.0)
    cfg = DistillConfig(similarity=off, feature=off, response=off, correlation=DistillTerm(True, 2.0))
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 3]), num_search=1)
    proj = loss.correlation_align.proj[0]
    assert (proj.in_features, proj.out_features) == (6, 3)  # the last block's widths: the correlation is depthwise
    assert loss.needs_features
    with torch.no_grad():  # projection: keep the first 3 student channels
        proj.weight.copy_(torch.eye(3, 6))
        proj.bias.zero_()
    teacher_map = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 3.0], [-1.0, 0.0, 1.0], [5.0, 5.0, 5.0]]])  # [1, 4, 3]
    # layer norm over channels (no affine): [1, 2, 3] -> [-a, 0, a], a = sqrt(3/2); [0, 0, 3] -> [-b, -b, 2b], b = 1/sqrt(2)
    a, b = math.sqrt(1.5), 1 / math.sqrt(2)
    target = torch.tensor([[[-a, 0.0, a], [-b, -b, 2 * b], [-a, 0.0, a], [0.0, 0.0, 0.0]]])
    exact = torch.cat([target, torch.randn(1, 4, 3)], dim=2)  # the 3 ignored student channels are noise
    out = loss({"correlation": exact}, {"correlation": teacher_map})
    assert set(out) == {"kd_correlation"}
    assert out["kd_correlation"].item() == pytest.approx(0.0, abs=1e-5)
    shifted = exact.clone()
    shifted[..., 0] += 1.0  # one channel off by 1 in each of the 4 cells: MSE over 12 values = 4 / 12
    assert loss({"correlation": shifted}, {"correlation": teacher_map})["kd_correlation"].item() == pytest.approx(
        2.0 * 4 / 12, rel=1e-4
    )
    with pytest.raises(ConfigError, match="xcorr"):
        loss({"features": []}, {"correlation": teacher_map})
    with pytest.raises(ConfigError, match="correlation"):
        DistillLoss(cfg, [], [], num_search=1)  # widths not given
