"""HAD temporal alignment: shapes, a trained GRU, and known losses."""

from __future__ import annotations

import pytest
import torch

from spiketrack.distill.temporal import TemporalAlign, clip_tokens, temporal_kd


def _identity_projection(align: TemporalAlign) -> None:
    with torch.no_grad():
        align.proj.weight.copy_(torch.eye(align.proj.out_features, align.proj.in_features))
        align.proj.bias.zero_()


def test_shapes_and_clip_layout() -> None:
    align = TemporalAlign(6, 10)
    assert align(torch.randn(2, 3, 16, 6)).shape == (2, 3, 16, 10)
    # B*n = 6 rows ordered (sample, frame) -> [B=2, n=3, tokens, C]; frame k of sample b is row b*3 + k
    x = torch.randn(6, 16, 4)
    clip = clip_tokens(x, 3, 4)
    assert clip.shape == (2, 3, 16, 4)
    assert torch.equal(clip[1, 2], x[5])
    assert clip_tokens(x, 3, 2).shape == (2, 3, 4, 4)  # pooled to a 2x2 grid


def test_identical_sequences_and_zero_residual_give_zero_loss() -> None:
    torch.manual_seed(0)
    teacher = torch.nn.functional.layer_norm(torch.randn(6, 16, 8), (8,))
    align = TemporalAlign(8, 8)
    _identity_projection(align)
    assert temporal_kd(teacher.clone(), teacher, align, n=3).item() == pytest.approx(0.0, abs=1e-10)
    # hand value: student = teacher + 0.5 everywhere -> aligned = student (zero residual) -> MSE = 0.25
    assert temporal_kd(teacher + 0.5, teacher, align, n=3).item() == pytest.approx(0.25, rel=1e-5)


def test_the_gru_is_trained() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 16, 8), torch.randn(6, 16, 12)
    align = TemporalAlign(8, 12)
    opt = torch.optim.SGD(align.parameters(), lr=0.1)
    gru_before = [p.detach().clone() for p in align.gru.parameters()]
    first = temporal_kd(student, teacher, align, n=3)
    first.backward()
    # zero-initialised read-out: it gets a gradient at once, the GRU from the next step on
    assert align.out.weight.grad.abs().sum() > 0
    opt.step()
    for _ in range(20):
        opt.zero_grad()
        loss = temporal_kd(student, teacher, align, n=3)
        loss.backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in align.gru.parameters())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(gru_before, align.gru.parameters(), strict=True))
    assert loss.item() < first.item()
