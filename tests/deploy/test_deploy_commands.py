"""``export`` / ``deploy-report`` check every argument before work; the one hardware table; a real template kernel
in the exported graph; a full disk while writing the NIR file."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_helpers import excite
from tracking_helpers import moving_box_sequence, write_dataset

from spiketrack.cli import main
from spiketrack.config import dump_config, load_config, to_dict
from spiketrack.errors import ConfigError
from spiketrack.models import build_model
from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

DEPLOYABLE = "configs/quickstart_student_deployable.yaml"


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().err


def _model_files(tmp_path: Path, config: str, *sets: str) -> tuple[str, str, torch.nn.Module]:
    """Config and checkpoint files of a model whose BN statistics make it fire (deploy_helpers.excite)."""
    cfg = load_config(config, list(sets))
    torch.manual_seed(0)
    model = excite(build_model(cfg))
    dump_config(cfg, tmp_path / "c.yaml")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": to_dict(cfg),
                "model": model.state_dict()}, tmp_path / "k.pt")
    return str(tmp_path / "c.yaml"), str(tmp_path / "k.pt"), model.eval()


def test_deploy_report_refuses_the_ann_teacher_before_any_work(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "t.yaml"
    dump_config(load_config("configs/quickstart_teacher.yaml"), cfg)
    out = tmp_path / "dr"
    rc, err = _run(capsys, "deploy-report", "--config", str(cfg), "--checkpoint", str(tmp_path / "none.pt"),
                   "--dataset", str(tmp_path), "--out", str(out))
    assert rc == 2 and err.count("\n") == 1 and "needs a spiking model" in err and "model.kind" in err, err
    assert not out.exists()
    rc, err = _run(capsys, "export", "--config", str(cfg), "--checkpoint", "x.pt", "--out", str(tmp_path / "m.nir"))
    assert rc == 2 and "needs a spiking model" in err and not (tmp_path / "m.nir").exists()


@pytest.mark.parametrize(("bits", "quantize", "problem"), [
    ("0", False, "expected 1..32"), ("-4", False, "expected 1..32"), ("4096", False, "expected 1..32"),
    ("1", True, "--quantize needs 2..16"), ("0", True, "--quantize needs 2..16"), ("32", True, "--quantize needs"),
])
def test_weight_bits_out_of_range_are_refused(tmp_path: Path, capsys, bits: str, quantize: bool, problem: str) -> None:
    config, ckpt, _ = _model_files(tmp_path, DEPLOYABLE)
    out = tmp_path / "dr"
    argv = ["deploy-report", "--config", config, "--checkpoint", ckpt, "--dataset", str(tmp_path), "--out", str(out),
            "--weight-bits", bits] + (["--quantize"] if quantize else [])
    rc, err = _run(capsys, *argv)
    assert rc == 2 and problem in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_deploy_report_device_is_checked(tmp_path: Path, capsys) -> None:
    config, ckpt, _ = _model_files(tmp_path, DEPLOYABLE)
    rc, err = _run(capsys, "deploy-report", "--config", config, "--checkpoint", ckpt, "--dataset", str(tmp_path),
                   "--out", str(tmp_path / "dr"), "--device", "cuda")
    assert rc == 2 and "CUDA is not available" in err and not (tmp_path / "dr").exists()


def test_deploy_report_on_a_device_records_it(tmp_path: Path) -> None:
    import json

    data = write_dataset(tmp_path / "data", [moving_box_sequence("a", frames=3)])
    config, ckpt, _ = _model_files(tmp_path, DEPLOYABLE, "model.timesteps=1")
    assert main(["deploy-report", "--config", config, "--checkpoint", ckpt, "--dataset", str(data), "--split", "all",
                 "--device", "cpu", "--out", str(tmp_path / "dr")]) == 0
    rep = json.loads((tmp_path / "dr" / "deploy_report.json").read_text())
    assert rep["device"] == "cpu" and set(rep["hardware"]) == {"loihi2", "speck", "spinnaker2"}


@pytest.mark.parametrize(("size", "problem"), [
    ("0", "positive multiple of 16"), ("-64", "positive multiple of 16"), ("65", "positive multiple of 16"),
    ("24", "positive multiple of 16"), ("500000", "needs about"),
])
def test_export_input_size_is_checked_before_allocating(tmp_path: Path, capsys, size: str, problem: str) -> None:
    config, ckpt, _ = _model_files(tmp_path, DEPLOYABLE)
    out = tmp_path / "m.nir"
    rc, err = _run(capsys, "export", "--config", config, "--checkpoint", ckpt, "--out", str(out), "--input-size", size)
    assert rc == 2 and problem in err and err.count("\n") == 1 and "--input-size" in err, err
    assert not out.exists()


def test_memory_check_names_the_estimate() -> None:
    from spiketrack.resources import check_memory

    check_memory(1000, "x", available=2000)
    with pytest.raises(ConfigError, match=r"needs about 2\.93 KiB, more than the 1000 B"):
        check_memory(3000, "x", available=1000)


def test_export_with_a_template_carries_its_correlation_kernel(tmp_path: Path, capsys) -> None:
    from spiketrack.data.crop import CropWindow
    from spiketrack.data.h5seq import open_sequence
    from spiketrack.data.inputs import batch_inputs, build_input
    from spiketrack.deploy.nir_export import read_nir

    data = write_dataset(tmp_path / "data", [moving_box_sequence("a", frames=4)])
    config, ckpt, model = _model_files(tmp_path, DEPLOYABLE)
    cfg = load_config(config)
    with open_sequence(data / "a.h5") as seq:  # what the tracker encodes for frame 2's box
        t0, t1 = seq.frame_window(2)
        item = build_input(model.input_spec, seq.frame_events(2), t0, t1,
                           CropWindow.around(seq.boxes[2], cfg.data.template_factor), cfg.data.template_size,
                           template=True)
    with torch.no_grad():
        kernel = model.encode_template(batch_inputs([item]))[0].numpy()  # [C, k, k]
    assert np.ptp(kernel) > 0  # a real template: not a constant kernel
    out = tmp_path / "m.nir"
    assert main(["export", "--config", config, "--checkpoint", ckpt, "--out", str(out), "--input-size", "64",
                 "--template", f"{data / 'a.h5'}:2"]) == 0
    graph = read_nir(out)
    w = graph.nodes["correlation"].weight  # the depthwise kernel written as a dense conv: channel c on the diagonal
    np.testing.assert_allclose(np.stack([w[c, c] for c in range(w.shape[0])]), kernel, rtol=1e-6, atol=1e-7)
    assert w[0, 1].max() == 0 and "frame 2" in str(graph.metadata.get("template"))
    # without --template the kernel is a placeholder, and the summary and the message say so
    assert main(["export", "--config", config, "--checkpoint", ckpt, "--out", str(tmp_path / "p.nir"),
                 "--input-size", "64"]) == 0
    assert "placeholder" in capsys.readouterr().out
    assert '"template": "placeholder"' in (tmp_path / "p.nir.json").read_text()
    # a frame the sequence does not have, and a file that is not there: one line each, nothing written
    for bad in (f"{data / 'a.h5'}:9", str(tmp_path / "none.h5")):
        rc, err = _run(capsys, "export", "--config", config, "--checkpoint", ckpt, "--out", str(tmp_path / "b.nir"),
                       "--template", bad)
        assert rc == 2 and "--template" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b.nir").exists()


def test_template_is_refused_for_the_metaformer_student(tmp_path: Path, capsys) -> None:
    data = write_dataset(tmp_path / "data", [moving_box_sequence("a", frames=2)])
    config, ckpt, _ = _model_files(tmp_path, "configs/quickstart_student.yaml", "model.neuron.kind=lif",
                                   "model.neuron.levels=1")
    rc, err = _run(capsys, "export", "--config", config, "--checkpoint", ckpt, "--out", str(tmp_path / "m.nir"),
                   "--input-size", "64", "--template", str(data / "a.h5"))
    assert rc == 2 and "deployable" in err, err


def test_full_disk_while_writing_the_nir_file(tmp_path: Path, capsys, monkeypatch) -> None:
    """ENOSPC: one line naming the NIR file, no temporary file left, no crash inside HDF5 (issue 31)."""
    config, ckpt, _ = _model_files(tmp_path, DEPLOYABLE)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "m.nir"
    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if ".tmp-" in self.name and self.name.startswith(".m.nir"):
            with open(self, "wb") as fh:  # part of the file reaches the disk, then the disk is full
                fh.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    rc, err = _run(capsys, "export", "--config", config, "--checkpoint", ckpt, "--out", str(out), "--input-size", "64")
    assert rc == 2 and err.count("\n") == 1 and str(out) in err and "no space left" in err, err
    assert list(out_dir.iterdir()) == []  # neither the file, nor its .tmp-*, nor the side JSON


def test_one_hardware_table_and_unknown_chips() -> None:
    from spiketrack.deploy.hardware import get_hardware, mappable_hardware
    from spiketrack.energy.hardware import HARDWARE
    from spiketrack.energy.profiles import get_profile

    assert set(mappable_hardware()) == {"loihi2", "speck", "spinnaker2"}
    for name, hw in HARDWARE.items():  # each chip's energy profile is its row of the one table
        if hw.sop_energy_pj is not None:
            assert get_profile(name).ac_pj == hw.sop_energy_pj and hw.source in get_profile(name).source
    assert get_hardware("loihi2") is HARDWARE["loihi2"]
    with pytest.raises(ConfigError, match="unknown hardware 'loihi3'.*loihi2"):
        get_hardware("loihi3")
    with pytest.raises(ConfigError, match="'loihi' is now named 'loihi2'"):
        get_profile("loihi")


def test_layers_are_mapped_by_type_not_by_name() -> None:
    """An unmapped layer type is named in the error (never silently dropped); subclasses map like their base."""
    from torch import nn

    from spiketrack.deploy.nir_export import ExportError, export_nir, unsupported_layers
    from spiketrack.models.spiking.metaformer import SpikeDrivenSelfAttention

    model = build_model(load_config(DEPLOYABLE)).eval()
    model.extra = nn.Identity()  # registered last: the walker meets it after the head
    with pytest.raises(ExportError, match=r"layer 'extra' \(Identity\): no NIR mapping"):
        export_nir(model, (64, 64))

    class RenamedAttention(SpikeDrivenSelfAttention):
        pass

    student = build_model(load_config("configs/quickstart_student.yaml", ["model.neuron.kind=lif",
                                                                           "model.neuron.levels=1"]))
    blocks = student.backbone.blocks
    old = blocks[0].attn
    blocks[0].attn = RenamedAttention(old.q.linear.in_features, old.heads, lambda: old.n_in.__class__())
    rows = {(u.layer, u.op) for u in unsupported_layers(student)}
    assert ("backbone.blocks.0.attn.kv_matmul", "K^T V (spike x spike)") in rows
    assert ("correlation", "correlation with the template kernel") in rows  # the xcorr student's correlation
