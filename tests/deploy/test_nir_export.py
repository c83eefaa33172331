"""NIR export: BN folding keeps the spikes, the LIF mapping is exact, I-LIF is refused with its reason,
the graph survives nir.write / nir.read, and an independent consumer (snnTorch) gives the same spike counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from deploy_helpers import QS_STUDENT, event_input, excite, lif_config

from spiketrack.deploy.fold import fold_batchnorm
from spiketrack.deploy.nir_export import (
    NIR_DT,
    ExportError,
    dense_grouped_weight,
    export_nir,
    lif_to_nir,
    nir_lif_step_params,
    read_nir,
    write_nir,
)
from spiketrack.deploy.roundtrip import spiketrack_spike_counts
from spiketrack.models import build_model
from spiketrack.models.spiking.metaformer import SeqConvBN, SeqLinearBN
from spiketrack.models.spiking.neurons import LIF, SpikingNeuron

nir = pytest.importorskip("nir", reason="nir is an optional dependency (extra 'deploy')")


def _all_spikes(model: torch.nn.Module, template: torch.Tensor, search: torch.Tensor) -> dict[str, torch.Tensor]:
    spikes: dict[str, list[torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _a, out, n=n: spikes.setdefault(n, []).append(out.detach().clone()))
        for n, m in model.named_modules() if isinstance(m, SpikingNeuron)
    ]
    with torch.no_grad():
        model(template, search)
    for h in hooks:
        h.remove()
    return {n: torch.cat([v.flatten() for v in vs]) for n, vs in spikes.items()}


def test_folded_student_fires_the_same_spikes(lif_student: torch.nn.Module) -> None:
    model = lif_student.double()
    folded = fold_batchnorm(model)
    bns = [m.bn for m in folded.modules() if isinstance(m, SeqConvBN | SeqLinearBN)]
    assert bns and all(isinstance(b, torch.nn.Identity) for b in bns)
    template, search = event_input(3, 64, seed=2).double(), event_input(3, 128, seed=3).double()
    a, b = _all_spikes(model, template, search), _all_spikes(folded, template, search)
    assert a.keys() == b.keys()
    total = sum(float(v.sum()) for v in a.values())
    assert total > 1000  # the comparison is not between silent networks
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_lif_mapping_reproduces_spikingjelly_update() -> None:
    """Euler step of NIR's LIF with the mapped parameters == spikingjelly's LIFNode, step by step."""
    neuron = LIF(tau=2.5, v_threshold=0.7)
    node = lif_to_nir(neuron, (5,))
    assert nir_lif_step_params(node) == pytest.approx({"tau": 2.5, "v_threshold": 0.7, "v_reset": 0.0})
    x = torch.rand(20, 1, 5, dtype=torch.float64) * 1.2
    ref = neuron.double()(x)
    v, out = np.zeros(5), []
    for xt in x[:, 0].numpy():
        v = v + NIR_DT / node.tau * ((node.v_leak - v) + node.r * xt)
        z = v >= node.v_threshold  # spikingjelly fires at >=; NIR writes >, equal only on exact ties
        v = np.where(z, node.v_reset, v)
        out.append(z.astype(float))
    assert ref.sum() > 0
    np.testing.assert_array_equal(ref[:, 0].numpy(), np.stack(out))


def test_integer_lif_is_refused_with_the_reason() -> None:
    from spiketrack.config import load_config

    model = build_model(load_config(QS_STUDENT))  # integer LIF, D = 4
    with pytest.raises(ExportError, match="I-LIF"):
        export_nir(model, (64, 64))


def test_dense_grouped_weight_is_the_same_conv() -> None:
    conv = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
    x = torch.randn(1, 6, 8, 8)
    dense = torch.nn.functional.conv2d(x, dense_grouped_weight(conv.weight.detach(), 6), padding=1)
    torch.testing.assert_close(dense, conv(x))


def test_export_lists_what_nir_cannot_express(lif_student: torch.nn.Module, tmp_path) -> None:
    export = export_nir(lif_student, (64, 64))
    ops = {(u.layer, u.op) for u in export.unsupported}
    assert ("backbone.blocks.0.attn.kv_matmul", "K^T V (spike x spike)") in ops
    assert any(layer.startswith("memory.") for layer, _ in ops)
    assert not any(isinstance(n, nir.NIRGraph) for n in export.graph.nodes.values())
    assert {type(n).__name__ for n in export.graph.nodes.values()} == {"Input", "Output", "Conv2d", "LIF"}
    assert export.output_shape == (lif_student.backbone.dims[2], 4, 4)
    path = write_nir(export, tmp_path / "m.nir")
    back = read_nir(path)
    assert set(back.nodes) == set(export.graph.nodes)
    assert sorted(back.edges) == sorted(export.graph.edges)
    w = export.graph.nodes["backbone.down1.conv"].weight
    np.testing.assert_array_equal(back.nodes["backbone.down1.conv"].weight, w)
    # the residual of stage 1 enters the next neuron as two edges (NIR sums them)
    assert {s for s, d in export.graph.edges if d == "backbone.stage1.0.mlp.n1"} == {
        "backbone.down1.conv", "backbone.stage1.0.mixer.pw2"}


def test_round_trip_through_snntorch_gives_the_same_spike_counts(lif_student: torch.nn.Module, tmp_path) -> None:
    pytest.importorskip("snntorch", reason="snnTorch (the independent NIR consumer) is not installed")
    from spiketrack.deploy.roundtrip import snntorch_spike_counts

    export = export_nir(lif_student, (64, 64))
    graph = read_nir(write_nir(export, tmp_path / "m.nir"))
    x = event_input(3, 64, seed=4)
    ours, out_ours = spiketrack_spike_counts(lif_student, x, export.neurons)
    theirs, out_theirs = snntorch_spike_counts(graph, x, export.neurons)
    assert sum(ours.values()) > 1000
    assert all(ours[n] > 0 for n in export.neurons)  # every layer fires: each comparison means something
    assert theirs == ours
    torch.testing.assert_close(out_theirs, out_ours, atol=1e-4, rtol=1e-4)


def test_export_command_writes_nir_or_refuses(tmp_path) -> None:
    from spiketrack.cli import main

    cfg = lif_config()
    model = excite(build_model(cfg))
    ckpt = tmp_path / "k.pt"
    from spiketrack.config import dump_config

    dump_config(cfg, tmp_path / "c.yaml")
    _save_checkpoint(model, cfg, ckpt)
    out = tmp_path / "m.nir"
    assert main(["export", "--config", str(tmp_path / "c.yaml"), "--checkpoint", str(ckpt), "--out", str(out),
                 "--input-size", "64"]) == 0
    assert len(read_nir(out).nodes) > 10
    bad = tmp_path / "ilif.yaml"
    dump_config(load_ilif := lif_config("model.neuron.kind=integer_lif", "model.neuron.levels=4"), bad)
    _save_checkpoint(build_model(load_ilif), load_ilif, tmp_path / "i.pt")
    assert main(["export", "--config", str(bad), "--checkpoint", str(tmp_path / "i.pt"), "--out",
                 str(tmp_path / "i.nir")]) == 2


def _save_checkpoint(model: torch.nn.Module, cfg, path) -> None:
    from spiketrack.config import to_dict
    from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": to_dict(cfg),
                "model": model.state_dict()}, path)


def test_bare_backbone_exports_with_its_own_module_names(lif_student: torch.nn.Module) -> None:
    backbone = lif_student.backbone
    export = export_nir(backbone, (64, 64))
    assert "down1.neuron" in export.neurons and "stem.conv" in export.graph.nodes
    counts, _ = spiketrack_spike_counts(backbone, event_input(3, 64), export.neurons)
    assert set(counts) == set(export.neurons)


def test_teacher_is_refused() -> None:
    from spiketrack.config import load_config

    teacher = build_model(load_config(None, ["model.kind=teacher", "model.variant=quickstart"]))
    with pytest.raises(ExportError, match="Spiking MetaFormer"):
        export_nir(teacher, (64, 64))
