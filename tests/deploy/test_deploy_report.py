"""Hardware fit rules, weight fake-quantisation and the deploy report on a tracked synthetic sequence."""

from __future__ import annotations

import math

import pytest
import torch
from deploy_helpers import event_input, lif_config
from torch import nn

from spiketrack.deploy.hardware import HARDWARE, layer_fit, network_fit
from spiketrack.deploy.quantize import fake_quantize, quantize_weights
from spiketrack.deploy.report import build_deploy_report
from spiketrack.energy.counter import count_operations


def _row(**kw):
    row = dict(name="l", neurons=1000, fan_in=9, synapses=9000, weights=144, kernel=[3, 3], out_channels=16,
               out_hw=[32, 32], sop_per_frame=1e4)
    row.update(kw)
    return row


def test_layer_fit_limits_and_cores() -> None:
    speck, loihi, spin = HARDWARE["speck"], HARDWARE["loihi2"], HARDWARE["spinnaker2"]
    assert layer_fit(speck, _row()).fits
    bad = layer_fit(speck, _row(out_hw=[128, 128], kernel=[17, 17], out_channels=2048))
    assert not bad.fits and len(bad.reasons) == 3
    assert not layer_fit(loihi, _row(), weight_bits=16).fits
    assert layer_fit(loihi, _row(neurons=8192 * 3 + 1)).cores == 4
    # SpiNNaker2: per-position synapses (8 bit) + 32-bit neuron states in 128 kB PEs
    big = _row(synapses=10**6, neurons=1000)
    assert layer_fit(spin, big).cores == math.ceil((10**6 * 8 + 1000 * 32) / (128 * 1024 * 8))
    net = network_fit(speck, [_row(name=f"l{i}") for i in range(10)])
    assert not net["fits"] and net["cores"] == 10 and any("cores" in r for r in net["reasons"])
    assert net["energy_mj_per_frame"] is None  # no published pJ/SOP used for Speck
    lo = network_fit(loihi, [_row(sop_per_frame=1000.0)], timesteps=2)
    assert lo["energy_mj_per_frame"] == pytest.approx(1000 * 23.6e-9)
    assert lo["latency_ms_per_frame"] == pytest.approx(1000 * 3.5e-6)


@pytest.mark.parametrize("bits", [8, 4])
def test_fake_quantize_per_channel_levels_and_error(bits: int) -> None:
    w = torch.randn(6, 3, 3, 3)
    q = fake_quantize(w, bits)
    qmax = 2 ** (bits - 1) - 1
    for c in range(6):
        scale = w[c].abs().max() / qmax
        codes = q[c] / scale
        torch.testing.assert_close(codes, codes.round(), atol=1e-4, rtol=0)
        assert codes.abs().max() <= qmax + 1e-4
        assert (q[c] - w[c]).abs().max() <= scale / 2 + 1e-6
    assert len(torch.unique(q[0])) <= 2 * qmax + 1


def test_quantized_student_is_folded_and_quantized() -> None:
    from spiketrack.models import build_model

    torch.manual_seed(0)
    model = build_model(lif_config()).eval()
    q4 = quantize_weights(model, 4)
    w = q4.backbone.down1.conv.conv.weight
    assert isinstance(q4.backbone.down1.conv.bn, nn.Identity)
    assert all(len(torch.unique(w[c])) <= 15 for c in range(w.shape[0]))
    out = q4.track(event_input(3, 128), q4.encode_template(event_input(3, 64)))
    assert out["pred_boxes"].shape == (1, 4)
    assert not torch.equal(model.backbone.down1.conv.conv.weight, w)  # the original is untouched


def test_deploy_report_rows(lif_student: nn.Module) -> None:
    model = lif_student
    mem = model.encode_template(event_input(3, 64))
    reps = [count_operations(model, event_input(3, 128, seed=s), mem, fn=model.track, timesteps=3, batch_size=1)
            for s in (5, 6)]
    rep = build_deploy_report(model, reps, timesteps=3)
    rows = {r["name"]: r for r in rep["layers"]}
    down1 = rows["backbone.down1.conv.conv"]
    conv = model.backbone.down1.conv.conv
    assert down1["fan_in"] == conv.in_channels * 9 and down1["weights"] == conv.weight.numel()
    assert down1["neurons"] == conv.out_channels * 32 * 32
    assert down1["nir_exportable"] and not rows["backbone.blocks.0.attn.q.linear"]["nir_exportable"]
    assert down1["sop_per_frame"] == pytest.approx(sum(
        next(la.sop for la in r.layers if la.name == "backbone.down1.conv.conv") for r in reps) / 2)
    assert down1["spikes_in_per_frame"] > 0
    assert "backbone.blocks.0.attn.kv_matmul" in rep["not_mappable"]
    assert set(rep["hardware"]) == {"loihi2", "speck", "spinnaker2"}
    mapped_sop = sum(r["sop_per_frame"] for r in rep["layers"] if r["weights"])  # spike x spike products excluded
    assert 0 < mapped_sop < rep["totals"]["sop_per_frame"]
    assert rep["hardware"]["loihi2"]["energy_mj_per_frame"] == pytest.approx(mapped_sop * 23.6e-9, rel=1e-9)


def test_deploy_report_command_on_the_deployable_student(tmp_path) -> None:
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "tracking"))
    from tracking_helpers import moving_box_sequence, write_dataset

    from spiketrack.cli import main
    from spiketrack.config import dump_config, load_config, to_dict
    from spiketrack.models import build_model
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    data = write_dataset(tmp_path / "data", [moving_box_sequence("a", frames=4), moving_box_sequence("b", frames=3)])
    cfg = load_config("configs/quickstart_student_deployable.yaml", ["model.timesteps=2"])
    torch.manual_seed(0)
    model = build_model(cfg)
    dump_config(cfg, tmp_path / "c.yaml")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": to_dict(cfg),
                "model": model.state_dict()}, tmp_path / "k.pt")
    out = tmp_path / "dr"
    assert main(["deploy-report", "--config", str(tmp_path / "c.yaml"), "--checkpoint", str(tmp_path / "k.pt"),
                 "--dataset", str(data), "--split", "all", "--weight-bits", "4", "--quantize", "--out", str(out)]) == 0
    rep = json.loads((out / "deploy_report.json").read_text())
    assert rep["sequences"] == 2 and rep["weight_bits"] == 4 and 0 < rep["frames"] <= 5
    weight_layers = [r for r in rep["layers"] if r["weights"]]
    assert weight_layers and all(r["nir_exportable"] for r in weight_layers)  # the whole search branch exports
    assert {r["name"] for r in rep["layers"]} >= {"correlation", "head2", "stem.conv.conv"}
    assert "| correlation | TemplateCorrelation |" in (out / "deploy_report.md").read_text()
