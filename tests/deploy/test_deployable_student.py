"""The deployable student: builds from its config, tracks, trains (gradients reach every parameter), is exported
whole to NIR (only Conv2d and LIF nodes) and round-trips through snnTorch with the same spike counts; its
template correlation is counted by the energy counter; I-LIF is refused for it."""

from __future__ import annotations

import pytest
import torch
from deploy_helpers import event_input, excite

from spiketrack.config import load_config
from spiketrack.deploy.nir_export import export_nir, read_nir, write_nir
from spiketrack.deploy.roundtrip import spiketrack_spike_counts
from spiketrack.energy.counter import count_operations
from spiketrack.errors import ConfigError
from spiketrack.models import build_model

CONFIG = "configs/quickstart_student_deployable.yaml"


def _model(*extra: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_config(CONFIG, ["model.timesteps=3", *extra]))


def test_tracks_and_trains() -> None:
    model = _model().train()
    out = model(event_input(3, 64, b=2), event_input(3, 128, seed=3, b=2), return_features=True)
    assert out["score_map"].shape == (2, 1, 8, 8) and out["pred_boxes"].shape == (2, 4)
    assert [f.shape for f in out["features"]] == [(2, 64, 64), (2, 64, 64)]
    loss = out["pred_boxes"].sum() + out["score_map"].mean() + sum(f.mean() for f in out["features"])
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_integer_lif_is_refused() -> None:
    with pytest.raises(ConfigError, match="binary 'lif'"):
        _model("model.neuron.kind=integer_lif", "model.neuron.levels=4")


def test_correlation_is_counted_as_a_spike_conv() -> None:
    model = excite(_model())
    kernel = model.encode_template(event_input(3, 64))
    rep = count_operations(model, event_input(3, 128), kernel, fn=model.track, timesteps=3, batch_size=1)
    corr = next(layer for layer in rep.layers if layer.name == "correlation")
    assert corr.input_kind == "spike" and corr.sop > 0
    assert rep.total_mac > 0 and rep.total_sop > corr.sop


def test_whole_search_branch_round_trips_through_snntorch(tmp_path) -> None:
    pytest.importorskip("nir", reason="nir is an optional dependency (extra 'deploy')")
    pytest.importorskip("snntorch", reason="snnTorch (the independent NIR consumer) is not installed")
    from spiketrack.deploy.roundtrip import snntorch_spike_counts

    model = excite(_model())
    kernel = model.encode_template(event_input(3, 64)).detach()
    export = export_nir(model, (128, 128), template=kernel)
    assert {type(n).__name__ for n in export.graph.nodes.values()} == {"Input", "Output", "Conv2d", "LIF"}
    assert export.output_shape == (5, 8, 8)
    assert {u.layer for u in export.unsupported} == {"input", "template", "output"}  # host-side steps only
    graph = read_nir(write_nir(export, tmp_path / "d.nir"))
    x = event_input(3, 128, seed=9)
    ours, out_ours = spiketrack_spike_counts(model, x, export.neurons, kernel)
    theirs, out_theirs = snntorch_spike_counts(graph, x, export.neurons)
    assert all(ours[n] > 0 for n in export.neurons)
    assert theirs == ours
    torch.testing.assert_close(out_theirs, out_ours, atol=1e-4, rtol=1e-4)
    # the exported output currents, averaged over T and decoded, are the model's own tracking output
    from spiketrack.models.heads import _head_outputs

    maps = out_theirs.mean(dim=0)
    boxes = _head_outputs(maps[:, :1], maps[:, 1:3], maps[:, 3:5])["pred_boxes"]
    torch.testing.assert_close(boxes, model.track(torch.expm1(x), kernel)["pred_boxes"], atol=1e-4, rtol=1e-4)


def test_model_summary_groups_the_deployable_student() -> None:
    from spiketrack.models.command import model_summary

    info = model_summary(load_config(CONFIG), macs=False)
    p = info["params"]
    assert set(p) == {"total", "backbone", "correlation", "head"}
    assert p["backbone"] + p["correlation"] + p["head"] == p["total"]
