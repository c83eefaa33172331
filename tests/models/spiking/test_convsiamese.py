"""The spiking conv Siamese student (configs/quickstart_student_conv.yaml): tracks and trains, its template kernel is
the normalised centre of the template's stride-8 currents, the energy counter charges the input conv and the
correlation as dense MACs and every other conv as spikes, with exact counts; bad fields are refused by name."""

from __future__ import annotations

import pytest
import torch

from spiketrack.config import load_config
from spiketrack.energy.counter import count_operations
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.models.correlation import centre_kernel, normalise_kernel

CONFIG = "configs/quickstart_student_conv.yaml"


def _model(*extra: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_config(CONFIG, ["model.timesteps=2", *extra]))


def _bins(t: int, size: int, seed: int, b: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((t, b, 2, size, size), 0.6), generator=g)


def test_tracks_on_a_stride_8_grid_and_trains() -> None:
    model = _model().train()
    out = model(_bins(2, 64, 0, b=2), _bins(2, 128, 1, b=2), return_features=True)
    assert out["score_map"].shape == (2, 1, 16, 16) and out["pred_boxes"].shape == (2, 4)
    assert [f.shape for f in out["features"]] == [(2, 256, 128), (2, 256, 128)]
    loss = out["pred_boxes"].sum() + out["score_map"].mean() + sum(f.mean() for f in out["features"])
    loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


def test_kernel_is_the_normalised_centre_of_the_template_currents() -> None:
    model = _model().train()  # batch statistics: an untrained model's neurons fire (eval: BN at its initial stats)
    seen: list[torch.Tensor] = []
    handle = model.convs[-1].register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        kernel = model.encode_template(_bins(2, 64, 0))
    handle.remove()
    currents = seen[0].mean(dim=0)  # [B, 128, 8, 8]: the last feature conv's output averaged over T
    torch.testing.assert_close(kernel, normalise_kernel(centre_kernel(currents, 5, 0.75)))
    assert kernel.shape == (1, 128, 5, 5)
    # zero mean and unit norm per channel (no channel is flat on random events)
    torch.testing.assert_close(kernel.sum(dim=(-2, -1)), torch.zeros(1, 128), atol=1e-5, rtol=0)
    torch.testing.assert_close(kernel.pow(2).sum(dim=(-2, -1)), torch.ones(1, 128), atol=1e-4, rtol=0)


def test_the_score_map_depends_on_the_template() -> None:
    model = _model().train()
    search = _bins(2, 128, 1)
    with torch.no_grad():
        a = model.track(search, model.encode_template(_bins(2, 64, 0)))["score_map"]
        b = model.track(search, model.encode_template(_bins(2, 64, 5)))["score_map"]
    assert not torch.allclose(a, b)


def test_energy_counter_charges_dense_and_spike_layers_exactly() -> None:
    model = _model().train()
    with torch.no_grad():
        kernel = model.encode_template(_bins(2, 64, 0))
        rep = count_operations(model, _bins(2, 128, 1), kernel, fn=model.track, timesteps=2, batch_size=1)
    layers = {layer.name: layer for layer in rep.layers}
    first = layers["convs.0.conv"]  # log1p of the counts: dense, 64 x 64 outputs x 32 channels x 2 inputs x 3 x 3
    assert first.input_kind == "dense" and first.mac == 2 * 64 * 64 * 32 * 2 * 9 and first.sop == 0
    corr = layers["correlation"]  # analog x analog: 16 x 16 cells x 128 channels x 5 x 5, per timestep
    assert corr.input_kind == "dense" and corr.mac == 2 * 16 * 16 * 128 * 25 and corr.sop == 0
    spiking = [n for n in layers if n.startswith(("convs.", "head_convs.", "out")) and n != "convs.0.conv"]
    assert len(spiking) == 5 + 2 + 1
    assert all(layers[n].input_kind == "spike" and layers[n].mac == 0 for n in spiking)
    assert rep.total_mac == first.mac + corr.mac


@pytest.mark.parametrize(("override", "key"), [("kernel=4", "kernel"), ("kernel_share=1.5", "kernel_share")])
def test_bad_fields_are_refused_by_name(override: str, key: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=key):
        _model(f"model.overrides.{override}")


def test_template_timesteps_other_than_t_are_refused() -> None:
    with pytest.raises(ConfigError, match="model.template_timesteps"):
        _model("model.template_timesteps=3")
