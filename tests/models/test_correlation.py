"""Depthwise template-search correlation: known answers, and the xcorr teacher and student that use it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spiketrack.config import load_config
from spiketrack.energy.counter import count_operations
from spiketrack.models import build_model
from spiketrack.models.correlation import TemplateCorrelation, template_kernel


def test_correlation_of_ones_counts_the_overlap() -> None:
    corr = TemplateCorrelation(1, 3)
    out = corr(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))
    # 'same' padding: a corner sees a 2x2 part of the kernel, an edge 2x3, the centre all 9
    assert out[0, 0].tolist() == [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]


def test_each_sample_and_timestep_uses_its_own_kernel() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 5, 5, generator=g)  # [T, B, C, h, w]
    kernel = torch.rand(3, 4, 3, 3, generator=g)
    out = TemplateCorrelation(4, 3)(x, kernel)
    for t in range(2):
        for b in range(3):
            expected = F.conv2d(x[t, b : b + 1], kernel[b].unsqueeze(1), padding=1, groups=4)
            assert torch.allclose(out[t, b], expected[0], atol=1e-6)


def test_even_kernel_is_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        TemplateCorrelation(4, 2)


def test_template_kernel_averages_cells() -> None:
    feats = torch.arange(16.0).view(1, 1, 4, 4)
    assert template_kernel(feats, 1).item() == pytest.approx(7.5)
    assert template_kernel(feats, 2)[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]


def _teacher():
    torch.manual_seed(0)
    return build_model(load_config("configs/quickstart_teacher.yaml", ["model.overrides={xcorr: true}"])).eval()


def test_xcorr_teacher_box_depends_on_the_template() -> None:
    model = _teacher()
    g = torch.Generator().manual_seed(1)
    search = {"rgb": torch.rand(1, 3, 128, 128, generator=g), "events": torch.rand(1, 2, 128, 128, generator=g) * 3}
    t1 = {"rgb": torch.rand(1, 3, 64, 64, generator=g), "events": torch.rand(1, 2, 64, 64, generator=g) * 3}
    t2 = {k: v.flip(-1).roll(7, -2) for k, v in t1.items()}
    with torch.no_grad():
        a, b = model(t1, search)["score_map"], model(t2, search)["score_map"]
    assert not torch.allclose(a, b)
    assert model.correlation is not None and "correlation_norm.weight" not in model.backbone_keys()


def test_xcorr_teacher_correlation_is_counted_as_dense_macs() -> None:
    model = _teacher()
    template = {"rgb": torch.rand(1, 3, 64, 64), "events": torch.rand(1, 2, 64, 64)}
    search = {"rgb": torch.rand(1, 3, 128, 128), "events": torch.rand(1, 2, 128, 128)}
    rep = count_operations(model, template, search, fn=model.forward, batch_size=1)
    corr = next(layer for layer in rep.layers if layer.name == "correlation")
    # 8x8 output cells x 128 channels x 3x3 kernel, one input channel per group
    assert corr.input_kind == "dense" and corr.mac == 8 * 8 * 128 * 9


def _student(*extra: str):
    torch.manual_seed(0)
    cfg = load_config("configs/quickstart_student.yaml", ["model.overrides={xcorr: true}", "model.timesteps=2", *extra])
    return build_model(cfg)


def _bins(t: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((t, 1, 2, size, size), 0.6), generator=g)


def test_xcorr_student_memory_carries_the_kernel_and_trains() -> None:
    model = _student().train()
    memory = model.encode_template(_bins(2, 64, 0))
    assert memory.kernel is not None and memory.kernel.shape == (1, 96, 3, 3)
    out = model.track(_bins(2, 128, 1), memory)
    (out["score_map"].mean() + out["pred_boxes"].sum()).backward()
    grads = [n for n, p in model.named_parameters() if p.grad is not None and n.startswith("backbone.blocks.2")]
    assert grads  # the last block is trained through the template kernel and the search spikes
    merged = model.merge_memories([memory, memory.detach()])
    assert torch.allclose(merged.kernel, memory.kernel)


def test_xcorr_student_refuses_a_memory_without_kernel() -> None:
    model = _student().eval()
    memory = model.encode_template(_bins(2, 64, 0))
    memory.kernel = None
    with pytest.raises(ValueError, match="no kernel"):
        model.track(_bins(2, 128, 1), memory)


def test_xcorr_student_correlation_is_counted_as_spike_operations() -> None:
    model = _student().train()  # batch statistics: the untrained network fires
    memory = model.encode_template(_bins(2, 64, 0))
    rep = count_operations(model, _bins(2, 128, 1), memory, fn=model.track, timesteps=2, batch_size=1)
    corr = next(layer for layer in rep.layers if layer.name == "correlation")
    assert corr.input_kind == "spike" and corr.sop > 0
