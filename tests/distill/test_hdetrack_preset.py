"""``distill.preset: hdetrack``: HDETrack's released distillation, term by term with hand-computed values, and on the
quickstart models.

Reference (Event-AHU/EventVOT_Benchmark, HDETrack/lib/train/actors/hdetrack.py): feature MSE without projection
(x 1), ``PairwiseDistance(p=2)`` between attention maps (x 0.7), focal loss of score maps / 2 (x 0.7).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from spiketrack.config import DistillConfig, load_config
from spiketrack.distill.losses import ROW_L2_EPS, feature_kd, response_focal_kd, similarity_kd
from spiketrack.distill.terms import DistillLoss, ModelPair
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.train.trainer import LossModule

ROOT = Path(__file__).resolve().parents[2]


def _preset() -> DistillConfig:
    return load_config(None, ["distill.preset=hdetrack"]).distill


def _info(dims: list[int]) -> list[dict]:
    return [{"num_chs": c, "module": f"blocks.{i}"} for i, c in enumerate(dims)]


def test_attention_rows_by_euclidean_distance_per_head() -> None:
    # 2 heads, 4 tokens (a 2x2 grid): teacher rows one-hot, student rows uniform -> each row differs by
    # (3/4, -1/4, -1/4, -1/4) (+ eps), norm sqrt(9/16 + 3/16) = sqrt(3)/2, in every row of both heads
    teacher = torch.eye(4).expand(1, 2, 4, 4)
    student = torch.full((1, 2, 4, 4), 0.25)
    row = math.sqrt((0.75 + ROW_L2_EPS) ** 2 + 3 * (-0.25 + ROW_L2_EPS) ** 2)
    assert row == pytest.approx(math.sqrt(3) / 2, rel=1e-5)
    assert similarity_kd([student], [teacher], "attentions", "row_l2").item() == pytest.approx(row, rel=1e-6)
    # per head, not head-averaged: head 0 of the student equal to the teacher's, head 1 as above -> mean row/2
    mixed = student.clone()
    mixed[:, 0] = torch.eye(4)
    per_head = (ROW_L2_EPS * 2 + row) / 2  # an exact row still carries the eps: |(eps, eps, eps, eps)| = 2 eps
    assert similarity_kd([mixed], [teacher], "attentions", "row_l2").item() == pytest.approx(per_head, rel=1e-5)
    # unequal head counts (spiking student 1 head): compared after averaging the teacher's heads
    assert similarity_kd([mixed[:, :1]], [teacher], "attentions", "row_l2").item() == pytest.approx(
        2 * ROW_L2_EPS, abs=1e-6)
    # rows are made distributions first: a student map at any scale gives the same distance
    assert similarity_kd([student * 7], [teacher], "attentions", "row_l2").item() == pytest.approx(row, rel=1e-6)


def test_features_without_projection_are_layer_normalised_and_compared() -> None:
    # C = 2: layer norm maps (a, b), a != b, to -/+1 (eps 1e-5 of LayerNorm on a variance of d^2/4)
    student = torch.tensor([[[0.0, 1.0], [3.0, 5.0], [2.0, -2.0], [1.0, 0.0]]])  # [1, 4 tokens (2x2), 2]
    teacher = torch.tensor([[[10.0, 20.0], [0.0, 9.0], [-1.0, 4.0], [7.0, 1.0]]])  # signs (-,+) (-,+) (-,+) (+,-)
    # tokens 0, 1, 3 agree in sign pattern (error ~0); token 2 is (+,-) against (-,+): squared error 4 per channel
    scale = lambda d: (d / 2) / math.sqrt(d * d / 4 + 1e-5)  # noqa: E731 - the normalised magnitude of a pair
    exact = [(scale(1) - scale(10)) ** 2, (scale(2) - scale(9)) ** 2, (scale(4) + scale(5)) ** 2,
             (scale(1) - scale(6)) ** 2]
    assert feature_kd([student], [teacher], None).item() == pytest.approx(2 * sum(exact) / 8, rel=1e-5)
    assert feature_kd([student], [teacher], None).item() == pytest.approx(1.0, rel=1e-3)  # one token of four off
    same = teacher * 3 + 5  # any affine change of a token: the same after layer norm
    assert feature_kd([same], [teacher], None).item() == pytest.approx(0.0, abs=1e-8)


def test_response_focal_loss_on_halved_score_maps() -> None:
    student = torch.tensor([0.8, 0.1, 0.5, 0.9]).view(2, 1, 1, 2)
    teacher = torch.tensor([0.6, 0.2, 0.4, 1.0]).view(2, 1, 1, 2)
    # no teacher cell / 2 equals 1: only the negative part, summed over cells and samples:
    # -sum (1 - t/2)^4 (s/2)^2 log(1 - s/2)
    expected = -sum((1 - t / 2) ** 4 * (s / 2) ** 2 * math.log(1 - s / 2)
                    for s, t in zip(student.flatten().tolist(), teacher.flatten().tolist(), strict=True))
    assert response_focal_kd(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-5)
    # a sum, not a mean: twice the batch, twice the loss
    doubled = response_focal_kd(torch.cat([student, student]), torch.cat([teacher, teacher]), 2.0)
    assert doubled.item() == pytest.approx(2 * expected, rel=1e-5)


def test_the_preset_is_three_weighted_terms_with_these_values() -> None:
    loss = DistillLoss(_preset(), ModelPair(_info([6, 8]), _info([5, 8]), num_search=1))
    assert set(loss.terms) == {"similarity", "feature", "response"}
    assert loss.outputs == {"features", "similarity", "attentions"}
    assert sum(p.numel() for p in loss.parameters()) == 0  # no projection: nothing learned
    torch.manual_seed(0)
    s_att = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    t_att = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    s_feat, t_feat = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    s_map, t_map = torch.rand(2, 1, 2, 2) * 0.9 + 0.05, torch.rand(2, 1, 2, 2) * 0.9 + 0.05
    student = {"score_map": s_map, "features": [torch.randn(2, 4, 6), s_feat], "similarity": [s_att, s_att]}
    teacher = {"score_map": t_map, "features": [torch.randn(2, 4, 5), t_feat], "attentions": [t_att, t_att]}
    out = loss(student, teacher)
    per_row = torch.linalg.vector_norm(s_att - t_att + ROW_L2_EPS, dim=-1).mean()  # torch PairwiseDistance(p=2)
    assert out["kd_similarity"].item() == pytest.approx(0.7 * per_row.item(), rel=1e-5)
    ln = lambda x: torch.nn.functional.layer_norm(x, x.shape[-1:])  # noqa: E731
    assert out["kd_feature"].item() == pytest.approx(((ln(s_feat) - ln(t_feat)) ** 2).mean().item(), rel=1e-5)
    assert out["kd_response"].item() == pytest.approx(0.7 * response_focal_kd(s_map, t_map, 2.0).item(), rel=1e-6)


def test_unequal_widths_are_refused_at_start_naming_the_preset() -> None:
    with pytest.raises(ConfigError, match=r"distill\.feature\.projection.*equal widths.*\[96\].*\[128\].*preset: hdetrack"):
        DistillLoss(_preset(), ModelPair(_info([64, 96]), _info([128] * 4)))
    # with a projection (the file's own key over the preset) the same pair is accepted
    cfg = _preset()
    cfg = dataclasses.replace(cfg, feature=dataclasses.replace(cfg.feature, projection=True))
    assert "feature" in DistillLoss(cfg, ModelPair(_info([64, 96]), _info([128] * 4))).terms


def test_the_preset_distils_the_quickstart_models_with_equal_widths() -> None:
    # the quickstart student widened to the teacher's 128 channels; both have 4 heads (compared head by head);
    # smaller crops and one search frame keep the test fast
    small = ["data.template_size=32", "data.search_size=64", "data.num_search=1"]
    s_cfg = load_config(ROOT / "configs" / "quickstart_student.yaml", [
        "distill.preset=hdetrack", "distill.temporal.enabled=false", "model.overrides={xcorr: true, dims: [16, 32, 64, 128]}",
        *small])
    t_cfg = load_config(ROOT / "configs" / "quickstart_teacher.yaml", small)
    torch.manual_seed(0)
    student, teacher = build_model(s_cfg).train(), build_model(t_cfg).eval()
    loss = DistillLoss.from_feature_info(s_cfg.distill, student.feature_info, teacher.feature_info, 1)
    assert set(loss.terms) == {"similarity", "feature", "response"}
    assert [loss.terms[n].settings.weight for n in ("similarity", "feature", "response")] == [0.7, 1.0, 0.7]
    g = torch.Generator().manual_seed(0)
    b = 2
    counts = lambda *shape: torch.poisson(torch.full(shape, 0.05), generator=g)  # noqa: E731
    batch = {
        "template_bins": counts(b, 1, 2, 32, 32), "search_bins": counts(b, 1, 1, 2, 64, 64),
        "template": {"rgb": torch.rand(b, 3, 32, 32, generator=g), "events": counts(b, 2, 32, 32)},
        "search": {"rgb": torch.rand(b, 1, 3, 64, 64, generator=g), "events": counts(b, 1, 2, 64, 64)},
        "heatmap": torch.zeros(b, 1, 1, 4, 4), "boxes": torch.full((b, 1, 4), 0.5), "sequence": ["a", "b"],
    }
    total, terms, _ = LossModule(student, s_cfg, loss, teacher)(batch)
    assert {"kd_similarity", "kd_feature", "kd_response"} <= set(terms)
    assert all(torch.isfinite(v) and v.item() > 0 for v in terms.values())
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
