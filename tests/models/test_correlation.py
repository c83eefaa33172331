"""Depthwise template-search correlation: known answers, and the xcorr teacher and student that use it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spiketrack.config import load_config
from spiketrack.energy.counter import count_operations
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.models.correlation import (
    InputNcc,
    TemplateCorrelation,
    centre_kernel,
    kernel_normaliser,
    normalise_kernel,
    template_kernel,
    to_head_grid,
)


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


def test_kernel_normaliser_standardises_each_channel_over_the_templates() -> None:
    assert isinstance(kernel_normaliser(4, False), nn.Identity)
    norm = kernel_normaliser(2, True).train()
    assert not any(True for _ in norm.parameters())  # no affine part that could restore a shared kernel
    g = torch.Generator().manual_seed(0)
    kernel = torch.rand(3, 2, 3, 3, generator=g) * torch.tensor([5.0, 0.1]).view(1, 2, 1, 1) + 7.0
    out = norm(kernel)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    v = kernel.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(out.var(dim=(0, 2, 3), unbiased=False), v / (v + norm.eps), atol=1e-5)  # ~1
    # the same kernel for every template carries nothing once normalised: all zeros
    same = kernel_normaliser(2, True).train()(torch.full((3, 2, 3, 3), 4.0))
    assert torch.allclose(same, torch.zeros_like(same))
    # tracking: the running statistics of training (momentum 0.1 after one batch from mean 0 / var 1)
    norm.eval()
    mean = 0.1 * kernel.mean(dim=(0, 2, 3))
    var = 0.9 + 0.1 * kernel.var(dim=(0, 2, 3), unbiased=True)
    expected = (kernel - mean.view(1, 2, 1, 1)) / torch.sqrt(var.view(1, 2, 1, 1) + norm.eps)
    assert torch.allclose(norm(kernel), expected, atol=1e-5)


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


def test_xcorr_teacher_with_kernel_norm_keeps_it_out_of_the_backbone() -> None:
    torch.manual_seed(0)
    cfg = load_config("configs/quickstart_teacher.yaml", ["model.overrides={xcorr: true, xcorr_kernel_norm: true}"])
    model = build_model(cfg)
    assert isinstance(model.kernel_norm, nn.BatchNorm2d)
    assert "kernel_norm.running_mean" in model.state_dict() and not any(
        k.startswith("kernel_norm.") for k in model.backbone_keys())


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


def test_xcorr_student_kernel_norm_standardises_the_memory_kernel() -> None:
    model = _student("model.overrides={xcorr: true, xcorr_kernel_norm: true}").train()
    bins = torch.cat([_bins(2, 64, 0), _bins(2, 64, 5) * 3], dim=1)  # two templates
    kernel = model.encode_template(bins).kernel
    assert kernel is not None and kernel.shape == (2, 96, 3, 3)
    assert torch.allclose(kernel.mean(dim=(0, 2, 3)), torch.zeros(96), atol=1e-5)
    assert (kernel < 0).any()  # signed: channels less active than in other templates count against a match


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


def _head_input(model: nn.Module, call) -> tuple[dict, torch.Tensor]:
    """Run ``call()`` and capture the tensor the model's head received."""
    seen: list[torch.Tensor] = []
    handle = model.head.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        out = call()
    finally:
        handle.remove()
    return out, seen[0]


def test_both_models_return_the_heads_correlation_input_for_correlation_kd() -> None:
    teacher = _teacher()
    template = {"rgb": torch.rand(2, 3, 64, 64), "events": torch.rand(2, 2, 64, 64)}
    search = {"rgb": torch.rand(2, 3, 128, 128), "events": torch.rand(2, 2, 128, 128)}
    with torch.no_grad():
        out, x = _head_input(teacher, lambda: teacher(template, search, return_features=True))
    assert x.shape == (2, 128, 8, 8) and out["correlation"].shape == (2, 64, 128)
    assert torch.equal(out["correlation"], x.flatten(2).transpose(1, 2))  # cell (i, j) is token 8 i + j
    student = _student().eval()
    with torch.no_grad():
        out, x = _head_input(student, lambda: student(_bins(2, 64, 0), _bins(2, 128, 1), return_features=True))
    assert x.shape == (2, 1, 96, 8, 8) and out["correlation"].shape == (1, 64, 96)  # [T, B, C, h, w] -> mean over T
    assert torch.allclose(out["correlation"], x.mean(dim=0).flatten(2).transpose(1, 2))
    plain = build_model(load_config("configs/quickstart_student.yaml", ["model.overrides={xcorr: false}"])).eval()
    with torch.no_grad():
        assert "correlation" not in plain(_bins(1, 64, 0), _bins(1, 128, 1), return_features=True)


def test_centre_kernel_keeps_the_boxs_layout() -> None:
    feats = torch.arange(64.0).view(1, 1, 8, 8)  # an 8 x 8 template map; the box is its central 4 x 4
    assert centre_kernel(feats, 3).shape == (1, 1, 3, 3)
    centre = feats[0, 0, 2:6, 2:6]
    assert centre_kernel(feats, 1).item() == pytest.approx(centre.mean().item())
    # 4 x 4 -> 2 x 2: each cell the mean of a 2 x 2 quarter of the box, in place (top-left stays top-left)
    assert centre_kernel(feats, 2)[0, 0].tolist() == [[22.5, 24.5], [38.5, 40.5]]


def test_normalised_kernel_is_zero_mean_and_unit_norm_per_channel() -> None:
    g = torch.Generator().manual_seed(0)
    kernel = torch.rand(2, 3, 3, 3, generator=g) * 5 + 2
    out = normalise_kernel(kernel)
    assert torch.allclose(out.mean(dim=(-2, -1)), torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(out.pow(2).sum(dim=(-2, -1)), torch.ones(2, 3), atol=1e-5)
    assert torch.allclose(normalise_kernel(kernel * 7 + 3), out, atol=1e-5)  # gain and offset do not matter
    flat = torch.full((1, 1, 3, 3), 4.0, requires_grad=True)
    assert torch.equal(normalise_kernel(flat), torch.zeros(1, 1, 3, 3))  # no pattern
    normalise_kernel(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()  # and a finite gradient (a ReLU map that is all zero in the centre)
    # a uniform search neighbourhood answers 0: only the pattern counts
    assert torch.allclose(TemplateCorrelation(3, 3)(torch.full((2, 3, 5, 5), 9.0), out)[:, :, 1:-1, 1:-1],
                          torch.zeros(2, 3, 3, 3), atol=1e-5)


def test_shallow_teacher_matches_the_template_pattern() -> None:
    torch.manual_seed(0)
    model = build_model(load_config("configs/quickstart_teacher.yaml",
                                    ["model.overrides={xcorr: true, xcorr_shallow: true}"])).eval()
    assert set(model.shallow_correlation) == {"rgb", "events"}
    g = torch.Generator().manual_seed(2)
    search = {"rgb": torch.rand(1, 3, 128, 128, generator=g), "events": torch.rand(1, 2, 128, 128, generator=g)}
    t1 = {"rgb": torch.rand(1, 3, 64, 64, generator=g), "events": torch.rand(1, 2, 64, 64, generator=g)}
    with torch.no_grad():
        out, x = _head_input(model, lambda: model(t1, search, return_features=True))
    # deep level (128) + two views' stride-8 levels (64 each), pooled to the 8 x 8 head grid
    assert x.shape == (1, 256, 8, 8) and out["correlation"].shape == (1, 64, 256)
    rep = count_operations(model, t1, search, fn=model.forward, batch_size=1)
    shallow = [layer for layer in rep.layers if layer.name.startswith("shallow_correlation")]
    # per view: 16 x 16 search cells x 64 channels x 3 x 3 kernel (dense teacher features: MACs)
    assert len(shallow) == 2 and all(layer.mac == 16 * 16 * 64 * 9 for layer in shallow)
    with pytest.raises(ConfigError, match="xcorr_shallow"):
        build_model(load_config("configs/quickstart_teacher.yaml", ["model.overrides={xcorr_shallow: true}"]))


def test_shallow_student_correlation_is_spike_driven_and_in_the_memory() -> None:
    model = _student("model.overrides={xcorr: true, xcorr_shallow: true}").train()
    memory = model.encode_template(_bins(2, 64, 0))
    assert memory.shallow_kernel is not None and memory.shallow_kernel.shape == (1, 32, 3, 3)
    assert torch.allclose(memory.shallow_kernel.mean(dim=(-2, -1)), torch.zeros(1, 32), atol=1e-5)
    rep = count_operations(model, _bins(2, 128, 1), memory, fn=model.track, timesteps=2, batch_size=1)
    layer = next(layer for layer in rep.layers if layer.name == "shallow_correlation")
    assert layer.input_kind == "spike" and layer.mac == 0 and layer.sop > 0
    merged = model.merge_memories([memory, memory.detach()])
    assert torch.allclose(merged.shallow_kernel, memory.shallow_kernel, atol=1e-5)
    out = model.track(_bins(2, 128, 1), memory)
    (out["score_map"].mean() + out["pred_boxes"].sum()).backward()
    assert model.backbone.stage2[0].mixer.pw1.conv.weight.grad is not None or any(
        p.grad is not None for p in model.backbone.stage2.parameters())


def test_input_ncc_finds_the_template_centre_and_ignores_gain() -> None:
    ncc = InputNcc(3, template_size=64, stride=4, share=0.75)
    assert ncc.kernel == 13  # 64 / 4 * 0.75 = 12 cells, made odd
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 128, 128, generator=g)
    template = image[..., 20:84, 40:104]  # a template crop centred at pixel (row 52, col 72)
    kernel = ncc.template_kernel(template)
    assert torch.allclose(kernel.mean(dim=(-2, -1)), torch.zeros(1, 3), atol=1e-6)
    assert torch.allclose(kernel.pow(2).sum(), torch.tensor(1.0), atol=1e-5)
    out = ncc(image, kernel)
    assert out.shape == (1, 1, 32, 32) and divmod(int(out.flatten().argmax()), 32) == (13, 18)  # (52, 72) / 4
    inner = (..., slice(6, -6), slice(6, -6))  # windows without zero padding
    assert torch.allclose(ncc(image * 3 + 0.5, kernel)[inner], out[inner], atol=1e-4)  # gain and offset do not matter
    assert float(out.abs().max()) <= 1.0 + 1e-5
    grid = InputNcc.to_grid(out, (8, 8))
    assert grid.shape == (1, 2, 8, 8) and float(grid[0, 0, 3, 4]) == float(out.max())  # best match of cell (3, 4)


def test_input_ncc_of_the_student_is_dense_and_in_the_memory() -> None:
    model = _student("model.overrides={xcorr: true, xcorr_input: true}").train()
    memory = model.encode_template(_bins(2, 64, 0))
    assert memory.input_kernel is not None and memory.input_kernel.shape == (1, 2, 13, 13)
    rep = count_operations(model, _bins(2, 128, 1), memory, fn=model.track, timesteps=2, batch_size=1)
    level0 = [layer for layer in rep.layers if layer.name.startswith("input_ncc")]
    # numerator and the two window sums: 2 channels x 32 x 32 cells x 13 x 13 taps each, counted as MACs
    assert len(level0) == 3 and all(layer.input_kind == "dense" and layer.mac == 2 * 32 * 32 * 169 for layer in level0)
    assert not any(p.requires_grad for p in model.input_ncc.parameters())  # the box filter is not learned
    merged = model.merge_memories([memory, memory.detach()])
    assert torch.allclose(merged.input_kernel, memory.input_kernel, atol=1e-5)


def test_to_head_grid_repeats_coarse_levels_and_pools_fine_ones() -> None:
    coarse = torch.arange(4.0).view(1, 1, 2, 2)
    assert to_head_grid(coarse, (4, 4))[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    fine = torch.arange(16.0).view(1, 1, 4, 4)
    assert to_head_grid(fine, (2, 2))[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert to_head_grid(fine, (4, 4)) is fine
    assert to_head_grid(torch.zeros(3, 2, 5, 4, 4), (8, 8)).shape == (3, 2, 5, 8, 8)  # [T, B, C, h, w]


@pytest.mark.parametrize("config", ["configs/quickstart_teacher.yaml", "configs/quickstart_student.yaml"])
def test_stride_8_head_gives_a_finer_score_map(config: str) -> None:
    levels = "{xcorr: true, xcorr_shallow: true, head_stride: 8}"
    model = build_model(load_config(config, [f"model.overrides={levels}"])).eval()
    assert model.output_stride == 8 and model.head_grid == 16
    with pytest.raises(ConfigError, match="head_stride"):
        build_model(load_config(config, ["model.overrides={xcorr: true, head_stride: 8}"]))  # no stride-8 level
    with pytest.raises(ConfigError, match="head_stride"):
        build_model(load_config(config, ["model.overrides={xcorr: true, xcorr_shallow: true, head_stride: 4}"]))


def test_sampler_heatmaps_follow_the_models_output_stride(tmp_path) -> None:
    from tracking_helpers import moving_box_sequence, write_dataset

    from spiketrack.data.inputs import InputSpec
    from spiketrack.train.sampling import PairDataset

    root = write_dataset(tmp_path / "ds", [moving_box_sequence("a", frames=6)], split="train")
    cfg = load_config(None, [f"data.datasets=[{{root: {root}}}]", "data.template_size=64", "data.search_size=128"])
    coarse = PairDataset(cfg, inputs=[InputSpec.event_bins(1)])[0]["heatmap"]
    fine = PairDataset(cfg, inputs=[InputSpec.event_bins(1)], output_stride=8)[0]["heatmap"]
    assert coarse.shape[-2:] == (8, 8) and fine.shape[-2:] == (16, 16) and fine.max() == 1.0


def test_input_prior_puts_the_ncc_best_match_on_the_score_map() -> None:
    sets = ["model.overrides={xcorr: true, xcorr_input: true, xcorr_input_prior: 6.0}", "model.timesteps=1"]
    model = build_model(load_config("configs/quickstart_student.yaml", sets)).eval()
    g = torch.Generator().manual_seed(3)
    search = torch.poisson(torch.full((1, 1, 2, 128, 128), 0.3), generator=g)
    search[..., 72:96, 40:64] += torch.poisson(torch.full((24, 24), 4.0), generator=g)  # a textured patch
    template = torch.zeros(1, 1, 2, 64, 64)
    template[..., 20:44, 20:44] = search[..., 72:96, 40:64]  # the patch, centred in the template crop
    with torch.no_grad():
        memory = model.encode_template(template)
        out = model.track(search, memory)
        match = InputNcc.to_grid(model.input_ncc(torch.log1p(search), memory.input_kernel), (8, 8))[:, 0]
    # the best NCC match is the cell of the patch's centre (84, 52); the untrained model's peak is on the patch
    # (rows 72-96, columns 40-64: cells 4-5 x 2-3), not elsewhere in the noise
    assert divmod(int(match.flatten().argmax()), 8) == (84 // 16, 52 // 16)
    row, col = divmod(int(out["score_map"].flatten().argmax()), 8)
    assert 4 <= row <= 5 and 2 <= col <= 3
    assert float(match.max()) <= 1.0 + 1e-5  # a true NCC: the box filter was not re-initialised as a learned conv
    assert model.input_prior.weight.requires_grad and float(model.input_prior.weight.detach()) == 6.0
    with pytest.raises(ConfigError, match="xcorr_input_prior"):
        build_model(load_config("configs/quickstart_student.yaml", ["model.overrides={xcorr: true, xcorr_input_prior: 2.0}"]))


def test_analog_head_student_charges_its_head_as_dense_macs() -> None:
    model = _student("model.overrides.analog_head=true").eval()
    memory = model.encode_template(_bins(2, 64, 0))
    rep = count_operations(model, _bins(2, 128, 1), memory, fn=model.track, timesteps=2, batch_size=1)
    heads = {layer.name: layer for layer in rep.layers if layer.name.startswith("head.")}
    # each branch's first conv: 8 x 8 cells (stride 16) x 32 outputs x 96 inputs x 3 x 3, on the mean over T
    first = heads["head.score.0"]
    assert first.input_kind == "dense" and first.mac == 8 * 8 * 32 * 96 * 9 and first.sop == 0
    assert all(layer.sop == 0 for layer in heads.values())


def test_shallow_share_widens_the_kernels_region() -> None:
    feats = torch.arange(64.0).view(1, 1, 8, 8)
    # share 0.75 of an 8 x 8 map: the central 6 x 6 (rows and columns 1..6), pooled to 3 x 3 cells of 2 x 2
    assert centre_kernel(feats, 3, 0.75)[0, 0].tolist() == [[13.5, 15.5, 17.5], [29.5, 31.5, 33.5], [45.5, 47.5, 49.5]]
    model = _student("model.overrides={xcorr: true, xcorr_shallow: true, xcorr_shallow_share: 0.75}").eval()
    template = _bins(1, 64, 0)
    seen: list[torch.Tensor] = []
    handle = model.shallow_neuron.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    memory = model.encode_template(template)
    handle.remove()
    expected = normalise_kernel(centre_kernel(seen[0].mean(dim=0), 3, 0.75))
    torch.testing.assert_close(memory.shallow_kernel, expected)
    with pytest.raises(ConfigError, match="xcorr_shallow_share"):
        _student("model.overrides={xcorr: true, xcorr_shallow: true, xcorr_shallow_share: 1.5}")


def test_membrane_correlation_is_dense_and_uses_the_analog_template() -> None:
    model = _student("model.overrides={xcorr: true, xcorr_shallow: true, xcorr_membrane: true}").eval()
    template = _bins(2, 64, 0)
    with torch.no_grad():
        _, _, shallow = model.backbone.conv_tokens(torch.log1p(template))  # [T, B, 32, 8, 8] membrane inputs
    memory = model.encode_template(template)
    # the kernel: the template's stride-8 membrane inputs averaged over T, not the firing rates of their spikes
    torch.testing.assert_close(memory.shallow_kernel, normalise_kernel(centre_kernel(shallow.mean(dim=0), 3)))
    rep = count_operations(model, _bins(2, 128, 1), memory, fn=model.track, timesteps=2, batch_size=1)
    layers = {layer.name: layer for layer in rep.layers}
    # T x 16 x 16 stride-8 cells x 32 channels x 3 x 3 (depthwise), and T x 8 x 8 x 96 x 3 x 3 at stride 16
    assert layers["shallow_correlation"].input_kind == "dense"
    assert layers["shallow_correlation"].mac == 2 * 16 * 16 * 32 * 9 and layers["shallow_correlation"].sop == 0
    assert layers["correlation"].input_kind == "dense" and layers["correlation"].mac == 2 * 8 * 8 * 96 * 9
