"""Distillation losses: known zeros, positivity and hand-checked values."""

from __future__ import annotations

import dataclasses
import math
from typing import get_type_hints

import pytest
import torch

from spiketrack.config import (
    CorrelationKDConfig,
    DistillConfig,
    FeatureKDConfig,
    FourierKDConfig,
    ResponseKDConfig,
    SimilarityKDConfig,
    TemporalKDConfig,
)
from spiketrack.distill.align import FeatureAlign
from spiketrack.distill.fourier import fourier_kd_v2
from spiketrack.distill.losses import (
    feature_kd,
    fourier_kd,
    response_kd,
    similarity_kd,
    temporal_spectrum,
)
from spiketrack.distill.terms import KD_TERMS, DistillLoss, ModelPair
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


def _info(dims: list[int]) -> list[dict]:
    return [{"num_chs": c, "module": f"blocks.{i}"} for i, c in enumerate(dims)]


def _cfg(**sections: object) -> DistillConfig:
    """Every term off except the sections given (their settings as given, enabled)."""
    off = {name: dataclasses.replace(getattr(DistillConfig(), name), enabled=False) for name in KD_TERMS}
    pairing = sections.pop("layer_pairing", "index")
    on = {name: dataclasses.replace(s, enabled=True) for name, s in sections.items()}
    return DistillConfig(layer_pairing=pairing, **{**off, **on})


def test_distill_loss_terms_switches_and_weights() -> None:
    cfg = _cfg(
        similarity=SimilarityKDConfig(weight=2.0),
        response=ResponseKDConfig(weight=0.5),
        fourier=FourierKDConfig(weight=3.0, mode="amplitude"),
    )
    loss = DistillLoss(cfg, ModelPair(_info([8]), _info([12]), num_search=3))
    s = {"score_map": _maps(3, (6, 1, 4, 4)), "features": [torch.randn(6, 4, 8)]}
    t = {"score_map": _maps(4, (6, 1, 4, 4)), "features": [torch.randn(6, 16, 12)]}
    out = loss(s, t)
    assert set(out) == {"kd_similarity", "kd_response", "kd_fourier"}
    s_maps = s["score_map"].reshape(2, 3, 4, 4)
    t_maps = t["score_map"].reshape(2, 3, 4, 4)
    assert out["kd_fourier"].item() == pytest.approx(3.0 * fourier_kd(s_maps, t_maps).item(), rel=1e-6)
    assert out["kd_response"].item() == pytest.approx(0.5 * response_kd(s["score_map"], t["score_map"]).item())
    assert out["kd_similarity"].item() == pytest.approx(2.0 * similarity_kd(s["features"], t["features"]).item())
    with pytest.raises(ConfigError, match="num_search"):
        DistillLoss(cfg, ModelPair(_info([8]), _info([12]), num_search=1))


def test_relative_depth_pairing_picks_teacher_layers_by_depth() -> None:
    # student 2 blocks (widths 4, 6), teacher 4 layers (widths 10, 11, 12, 13): block 0 <-> layer 1, 1 <-> 3
    s_info, t_info = _info([4, 6]), _info([10, 11, 12, 13])
    cfg = _cfg(similarity=SimilarityKDConfig(layers=[0, 1]), feature=FeatureKDConfig(layers=[0, 1]),
               layer_pairing="relative_depth")
    loss = DistillLoss.from_feature_info(cfg, s_info, t_info, num_search=1)
    feature = loss.terms["feature"]
    assert feature.teacher_layers == [1, 3] and loss.terms["similarity"].teacher_layers == [1, 3]
    assert [p.out_features for p in feature.align.proj] == [11, 13]
    torch.manual_seed(0)
    s = {"features": [torch.randn(2, 4, 4), torch.randn(2, 4, 6)]}
    t = {"features": [torch.randn(2, 16, c) for c in (10, 11, 12, 13)]}
    out = loss(s, t)
    expected = similarity_kd(s["features"], [t["features"][1], t["features"][3]])
    assert out["kd_similarity"].item() == pytest.approx(expected.item(), rel=1e-6)
    # by index (the default) the same layers pair 0 <-> 0 and 1 <-> 1
    index = DistillLoss.from_feature_info(_cfg(feature=FeatureKDConfig(layers=[0, 1])), s_info, t_info, 1)
    assert index.terms["feature"].teacher_layers == [0, 1]
    assert [p.out_features for p in index.terms["feature"].align.proj] == [10, 11]
    # a layer the student does not have is refused when the loss is built, naming the term's key
    with pytest.raises(ConfigError, match=r"distill\.feature\.layers: layer 2 out of range for the student"):
        DistillLoss.from_feature_info(_cfg(feature=FeatureKDConfig(layers=[2])), s_info, t_info, 1)


def test_optional_terms_ot_temporal_and_hdetrack_fourier() -> None:
    cfg = _cfg(
        feature=FeatureKDConfig(align="ot"),
        fourier=FourierKDConfig(weight=2.0, mode="hdetrack_v2"),
        temporal=TemporalKDConfig(weight=0.5),
    )
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 8]), num_search=3)
    temporal = loss.terms["temporal"].align
    assert temporal.proj.in_features == 6
    torch.manual_seed(0)
    s = {"score_map": _maps(3, (6, 1, 4, 4)), "features": [torch.randn(6, 4, 4), torch.randn(6, 4, 6)]}
    t = {"score_map": _maps(4, (6, 1, 4, 4)), "features": [torch.randn(6, 16, 8) for _ in range(3)]}
    out = loss(s, t)
    assert set(out) == {"kd_feature", "kd_fourier", "kd_temporal"}
    s_maps, t_maps = s["score_map"].reshape(2, 3, 4, 4), t["score_map"].reshape(2, 3, 4, 4)
    assert out["kd_fourier"].item() == pytest.approx(2.0 * fourier_kd_v2(s_maps, t_maps).item(), rel=1e-6)
    sum(out.values()).backward()
    assert all(p.grad is not None for p in loss.terms["feature"].align.parameters())
    assert temporal.out.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="num_search"):
        DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 8]), num_search=1)


def test_defaults_leave_the_new_options_off() -> None:
    cfg = DistillConfig()
    assert (cfg.preset, cfg.layer_pairing, cfg.feature.align, cfg.feature.projection) == (None, "index", "pool", True)
    assert (cfg.similarity.source, cfg.similarity.distance, cfg.response.loss) == ("features", "mse", "kl")
    assert not cfg.temporal.enabled and not cfg.fourier.enabled and not cfg.correlation.enabled
    assert cfg.fourier.mode == "hdetrack_v2"  # the default mode sees frame order (tests/distill/test_fourier.py)


def test_correlation_kd_regresses_projected_student_map_onto_normalised_teacher_map() -> None:
    cfg = _cfg(correlation=CorrelationKDConfig(weight=2.0))
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 3]), num_search=1)
    proj = loss.terms["correlation"].align.proj[0]
    assert (proj.in_features, proj.out_features) == (6, 3)  # the last block's widths: the correlation is depthwise
    assert loss.outputs == {"correlation"}
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


def test_correlation_kd_width_follows_the_heads_input_when_models_have_more_levels() -> None:
    cfg = _cfg(correlation=CorrelationKDConfig())
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 3]), num_search=1, correlation=(11, None))
    proj = loss.terms["correlation"].align.proj[0]
    assert (proj.in_features, proj.out_features) == (11, 3)  # student: deep 6 + shallow/input levels; teacher: 3
    loss = DistillLoss.from_feature_info(cfg, _info([4, 6]), _info([8, 8, 3]), num_search=1, correlation=(11, 7))
    assert loss.terms["correlation"].align.proj[0].out_features == 7


def test_response_kd_puts_a_coarser_teacher_map_on_the_students_grid() -> None:
    from spiketrack.distill.terms import on_grid_of

    teacher = torch.full((2, 1, 8, 8), 0.25)
    student = torch.rand(2, 1, 16, 16)
    assert on_grid_of(teacher, student).shape == (2, 1, 16, 16)
    assert torch.allclose(on_grid_of(teacher, student), torch.full((2, 1, 16, 16), 0.25))
    assert on_grid_of(student, student) is student
    loss = DistillLoss.from_feature_info(_cfg(response=ResponseKDConfig()), _info([4, 6]), _info([8, 8, 6]), 1)
    uniform = torch.full((2, 1, 16, 16), 0.25)  # the teacher's flat map, upsampled, against the same flat map
    assert loss({"score_map": uniform}, {"score_map": teacher})["kd_response"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss({"score_map": student}, {"score_map": teacher})["kd_response"].item() > 0


def test_each_term_asks_only_for_the_outputs_it_reads() -> None:
    pair = ModelPair(_info([4, 6]), _info([8, 8, 8]), num_search=3)
    expected = {
        "similarity": {"features"}, "feature": {"features"}, "response": set(), "fourier": set(),
        "temporal": {"features"}, "correlation": {"correlation"},
    }
    for name, outputs in expected.items():
        assert DistillLoss(_cfg(**{name: getattr(DistillConfig(), name)}), pair).outputs == outputs, name
    attentions = _cfg(similarity=SimilarityKDConfig(source="attentions"))
    assert DistillLoss(attentions, pair).outputs == {"similarity", "attentions"}  # student and teacher names
    assert DistillLoss(_cfg(), pair).outputs == frozenset()


def test_the_table_and_the_config_sections_agree() -> None:
    # every term has its section {enabled, weight, ...} in DistillConfig and every section of it is a term
    sections = {name for name, tp in get_type_hints(DistillConfig).items() if dataclasses.is_dataclass(tp)}
    assert sections == set(KD_TERMS)
    for name, term in KD_TERMS.items():
        settings = getattr(DistillConfig(), name)
        assert {"enabled", "weight"} <= {f.name for f in dataclasses.fields(settings)}, name
        assert term.name == name


def test_a_term_multiplies_its_loss_by_its_weight_and_refuses_a_negative_one() -> None:
    pair = ModelPair(_info([8]), _info([8]))
    s = {"score_map": _maps(5, (2, 1, 4, 4))}
    t = {"score_map": _maps(6, (2, 1, 4, 4))}
    one = DistillLoss(_cfg(response=ResponseKDConfig(weight=1.0)), pair)(s, t)["kd_response"]
    three = DistillLoss(_cfg(response=ResponseKDConfig(weight=3.0)), pair)(s, t)["kd_response"]
    assert three.item() == pytest.approx(3.0 * one.item(), rel=1e-6)
    with pytest.raises(ConfigError, match=r"distill\.response\.weight"):
        DistillLoss(_cfg(response=ResponseKDConfig(weight=-1.0)), pair)


def test_projections_of_a_checkpoint_written_before_the_table_load() -> None:
    cfg = _cfg(feature=FeatureKDConfig(), temporal=TemporalKDConfig(), correlation=CorrelationKDConfig())
    pair = ModelPair(_info([4, 6]), _info([8, 8, 8]), num_search=2)
    torch.manual_seed(0)
    source = DistillLoss(cfg, pair)
    old_names = {"terms.feature.align.": "align.", "terms.temporal.align.": "temporal.",
                 "terms.correlation.align.": "correlation_align."}
    old = {}
    for key, value in source.state_dict().items():
        prefix = next(p for p in old_names if key.startswith(p))
        old[old_names[prefix] + key[len(prefix):]] = value
    assert "align.proj.0.weight" in old and "temporal.gru.weight_ih_l0" in old
    torch.manual_seed(1)
    target = DistillLoss(cfg, pair)
    target.load_state_dict(old)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
