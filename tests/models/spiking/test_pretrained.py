"""model.pretrained for the student: own state dicts and spiketrack checkpoints load, partial loads are reported,
bad files are CheckpointErrors naming the file, and a checkpoint rebuild does not need the pretrained file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from spiketrack.config import load_config, to_dict
from spiketrack.errors import CheckpointError
from spiketrack.models import build_model
from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint

SETS = ["model.kind=student", "model.variant=quickstart", "model.timesteps=1", "data.template_size=32",
        "data.search_size=64"]


def build(seed: int, *extra: str) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(load_config(None, [*SETS, *extra]))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_plain_state_dict_loads_every_key(tmp_path: Path) -> None:
    source = build(1)
    path = tmp_path / "student.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)  # a DDP-saved dict
    model = build(2, f"model.pretrained={path}")
    assert same_weights(model, source) and not same_weights(build(2), source)
    report = model.pretrained_report
    assert report.missing == [] and report.unexpected == [] and len(report.loaded) == len(source.state_dict())


def test_partial_state_dict_is_reported_not_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = build(1).state_dict()
    backbone = {k: v for k, v in source.items() if k.startswith("backbone.")}
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": {**backbone, "foreign.weight": torch.zeros(3)}}, path)
    with caplog.at_level(logging.WARNING):
        model = build(2, f"model.pretrained={path}")
    report = model.pretrained_report
    assert report.loaded == sorted(backbone)
    assert report.unexpected == ["foreign.weight"]
    assert report.missing and all(not k.startswith("backbone.") for k in report.missing)
    assert any(k.startswith("head.") for k in report.missing)
    assert "foreign.weight" in caplog.text and "missing" in caplog.text
    fresh = build(2).state_dict()
    own = model.state_dict()
    assert all(torch.equal(own[k], source[k]) for k in backbone)
    assert all(torch.equal(own[k], fresh[k]) for k in report.missing)  # kept at their initialisation


def _checkpoint(tmp_path: Path, kind: str, cfg_sets: list[str], state: dict, name: str = "") -> Path:
    path = tmp_path / f"{name or kind}.ckpt"
    cfg = load_config(None, cfg_sets)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, "config": to_dict(cfg),
                "model": state}, path)
    return path


def test_spiketrack_checkpoint_loads_and_a_rebuild_does_not_need_the_pretrained_file(tmp_path: Path) -> None:
    source = build(1)
    init = _checkpoint(tmp_path, "student", SETS, source.state_dict())
    model = build(2, f"model.pretrained={init}")
    assert same_weights(model, source)
    # a model trained from those weights is rebuilt from its checkpoint after the pretrained file is gone
    trained = _checkpoint(tmp_path, "student", [*SETS, f"model.pretrained={init}"], build(3).state_dict(), "trained")
    init.unlink()
    rebuilt, cfg = load_checkpoint(trained)
    assert cfg.model.pretrained == str(init) and same_weights(rebuilt, build(3))


def test_bad_files_are_checkpoint_errors_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(CheckpointError, match="nowhere.pt"):
        build(0, f"model.pretrained={missing}")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="junk.pt"):
        build(0, f"model.pretrained={junk}")
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.layer.0.weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt.*no key fits"):
        build(0, f"model.pretrained={foreign}")
    wrong = tmp_path / "wrong.pt"
    state = build(0).state_dict()
    key = next(k for k, v in state.items() if v.ndim == 4)
    torch.save({key: torch.zeros(1, 1, 1, 1)}, wrong)
    with pytest.raises(CheckpointError, match=f"wrong.pt \\[{key}\\]: shape"):
        build(0, f"model.pretrained={wrong}")
    teacher = _checkpoint(tmp_path, "teacher", ["model.kind=teacher"], {"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="teacher"):
        build(0, f"model.pretrained={teacher}")


# ------------------------------------------------------------------ foreign weights (SDT-V3 family)
# Names and shapes from the public code: BICLab/Spike-Driven-Transformer-V3 SDT_V3/Classification/Model_Base/models.py
# (Efficient_Spiking_Transformer_l: embed_dim [64, 128, 256, 360], mlp_ratios 4, lamda_ratio 4, 6 + 2 blocks),
# YmShan/SDTrack lib/models/layers/head.py (box_head conv{1..4}_{ctr,size,offset} = Sequential(MultiSpike, Conv2d, BN),
# conv5_*), faicaiwawa/SpikeTrack lib/models/spiketrack/decoder.py (decoder.conv{1..4}_* = Sequential(Conv2d, BN)).
def _bn(out: dict, prefix: str, c: int, g: torch.Generator, frozen: bool = False) -> None:
    out[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
    out[f"{prefix}.bias"] = torch.randn(c, generator=g)
    out[f"{prefix}.running_mean"] = torch.randn(c, generator=g)
    out[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
    if not frozen:  # FrozenBatchNorm2d (SpikeTrack) has no counter
        out[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def _conv(out: dict, prefix: str, shape: tuple, g: torch.Generator, bias: bool) -> None:
    out[f"{prefix}.weight"] = torch.randn(*shape, generator=g) * 0.1
    if bias:
        out[f"{prefix}.bias"] = torch.randn(shape[0], generator=g)


def _sep_conv(out: dict, p: str, d: int, k: int, g: torch.Generator) -> None:  # SepConv_Spike(dim, expansion 2)
    _conv(out, f"{p}.pwconv1.0", (2 * d, d, 1, 1), g, False)
    _bn(out, f"{p}.pwconv1.1", 2 * d, g)
    _conv(out, f"{p}.dwconv.0", (2 * d, 1, k, k), g, False)
    _bn(out, f"{p}.dwconv.1", 2 * d, g)
    _conv(out, f"{p}.pwconv2.0", (d, 2 * d, 1, 1), g, False)
    _bn(out, f"{p}.pwconv2.1", d, g)


def _conv_block(out: dict, p: str, d: int, g: torch.Generator) -> None:  # MS_ConvBlock_spike_SepConv(dim, mlp 4)
    _sep_conv(out, f"{p}.Conv", d, 7, g)
    _conv(out, f"{p}.conv1", (4 * d, d, 3, 3), g, False)
    _bn(out, f"{p}.bn1", 4 * d, g)
    _conv(out, f"{p}.conv2", (d, 4 * d, 3, 3), g, False)
    _bn(out, f"{p}.bn2", d, g)


def _down(out: dict, p: str, cin: int, cout: int, k: int, g: torch.Generator) -> None:  # MS_DownSampling
    _conv(out, f"{p}.encode_conv", (cout, cin, k, k), g, True)
    _bn(out, f"{p}.encode_bn", cout, g)


def _block(out: dict, p: str, c: int, g: torch.Generator) -> None:  # MS_Block_Spike_SepConv (lamda_ratio 4)
    _sep_conv(out, f"{p}.conv", c, 3, g)
    for name, cout, cin in (("q", c, c), ("k", c, c), ("v", 4 * c, c), ("proj", c, 4 * c)):
        _conv(out, f"{p}.attn.{name}_conv.0", (cout, cin, 1, 1), g, False)
        _bn(out, f"{p}.attn.{name}_conv.1", cout, g)
    _conv(out, f"{p}.mlp.fc1_conv", (4 * c, c, 1), g, True)
    _bn(out, f"{p}.mlp.fc1_bn", 4 * c, g)
    _conv(out, f"{p}.mlp.fc2_conv", (c, 4 * c, 1), g, True)
    _bn(out, f"{p}.mlp.fc2_bn", c, g)


def sdt_v3_state(prefix: str = "", head: str | None = None, conv_index: int = 1, channels: int = 32,
                 e: tuple[int, ...] = (16, 32, 64, 96), blocks: tuple[int, int] = (2, 1)) -> dict:
    """A synthetic state dict with the names and shapes of an SDT-V3 backbone (+ an SDTrack/SpikeTrack head).

    The public models are 'l' = embed (64, 128, 256, 360) with (6, 2) blocks and 256 head channels; the layout is
    the same at any width, so the tests use a narrow one (our student built with the same widths)."""
    g = torch.Generator().manual_seed(5)
    out: dict = {}
    _down(out, f"{prefix}downsample1_1", 3, e[0] // 2, 7, g)
    _conv_block(out, f"{prefix}ConvBlock1_1.0", e[0] // 2, g)
    _down(out, f"{prefix}downsample1_2", e[0] // 2, e[0], 3, g)
    _conv_block(out, f"{prefix}ConvBlock1_2.0", e[0], g)
    _down(out, f"{prefix}downsample2", e[0], e[1], 3, g)
    _conv_block(out, f"{prefix}ConvBlock2_1.0", e[1], g)
    _conv_block(out, f"{prefix}ConvBlock2_2.0", e[1], g)
    _down(out, f"{prefix}downsample3", e[1], e[2], 3, g)
    for i in range(blocks[0]):
        _block(out, f"{prefix}block3.{i}", e[2], g)
    _down(out, f"{prefix}downsample4", e[2], e[3], 3, g)
    for i in range(blocks[1]):
        _block(out, f"{prefix}block4.{i}", e[3], g)
    if head is None:
        out[f"{prefix}head.weight"] = torch.randn(1000, e[3], generator=g)  # the ImageNet classifier
        out[f"{prefix}head.bias"] = torch.randn(1000, generator=g)
        return out
    for branch, n_out in (("ctr", 1), ("size", 2), ("offset", 2)):
        widths = [e[3], channels, channels // 2, channels // 4, channels // 8]
        for i in range(4):
            _conv(out, f"{head}conv{i + 1}_{branch}.{conv_index}", (widths[i + 1], widths[i], 3, 3), g, True)
            _bn(out, f"{head}conv{i + 1}_{branch}.{conv_index + 1}", widths[i + 1], g, frozen=head == "decoder.")
        _conv(out, f"{head}conv5_{branch}", (n_out, widths[4], 1, 1), g, True)
    return out


# our student in SDT-V3's layout at the narrow test width: 7x7 stem and depthwise kernels, ratios 4, (2, 1) blocks,
# and two stage-1 blocks (SDT-V3 has one there) so that a layer without counterpart is seen
NARROW = [*SETS, "model.overrides={dims: [16, 32, 64, 96], conv_depths: [2, 2], depths: [2, 1], mlp_ratio: 4.0, "
          "conv_ratio: 4.0, sepconv_kernel: 7, stem_kernel: 7, head_channels: 32, memory_points: [1, 2], "
          "heads: 4, xcorr: false}"]


@pytest.mark.parametrize(("fmt", "prefix", "head", "conv_index", "wrap"), [
    ("sdt_v3", "", None, 1, "model"), ("sdtrack", "backbone.", "box_head.", 1, "net"),
    ("spiketrack", "encoder.", "decoder.", 0, "net"),
])
def test_foreign_weights_load_through_the_key_map(tmp_path: Path, fmt, prefix, head, conv_index, wrap) -> None:
    state = sdt_v3_state(prefix, head, conv_index)
    path = tmp_path / f"{fmt}.pth"
    torch.save({wrap: state, "epoch": 3}, path)
    torch.manual_seed(0)
    model = build_model(load_config(None, [*NARROW, f"model.pretrained={path}"]))
    report = model.pretrained_report
    assert report.format == fmt
    # per block: q, k, fc1, fc2 fit; v and proj are 4x wider there (lamda_ratio 4); the 3x3 stage-4 downsampling
    # does not fit our token projection: 3 x 2 + 1 mismatches
    assert len(report.mismatched) == 7 and all(".attn.v." in m or ".attn.proj." in m or "transitions" in m
                                               for m in report.mismatched)
    loaded_modules = {k.rsplit(".", 2)[0] for k in report.loaded}
    assert {"backbone.stem.conv", "backbone.stage1.0.mixer.pw1", "backbone.stage2.1.mlp.c2",
            "backbone.blocks.2.mlp.fc2"} <= loaded_modules
    assert "backbone.stage1.1.mlp.c1.conv.weight" in report.missing  # tiny has 2 stage-1 blocks, SDT-V3 one
    assert not any(k.endswith("num_batches_tracked") for k in report.missing)
    assert f"{prefix}ConvBlock1_1.0.conv1.weight" in report.unexpected  # their half-width block: no counterpart
    assert f"{prefix}block3.0.conv.pwconv1.0.weight" in report.unexpected  # the SepConv of their blocks
    assert (any(k.startswith("head.score.convs.3") for k in report.loaded) == (head is not None))
    own = model.state_dict()
    # known answers: the RGB stem adapted to 2 polarities (timm: first 2 channels x 3/2), conv biases folded into BN
    w = state[f"{prefix}downsample1_1.encode_conv.weight"]
    torch.testing.assert_close(own["backbone.stem.conv.conv.weight"], w[:, :2] * 1.5)
    torch.testing.assert_close(own["backbone.down1.conv.bn.running_mean"],
                               state[f"{prefix}downsample1_2.encode_bn.running_mean"]
                               - state[f"{prefix}downsample1_2.encode_conv.bias"])
    # the mapped layers compute what theirs compute (eval): a Conv1d(k=1, bias) + BN1d and a Conv2d(bias) + BN2d
    fc1 = torch.nn.Sequential(torch.nn.Conv1d(64, 256, 1), torch.nn.BatchNorm1d(256)).eval()
    fc1.load_state_dict({"0.weight": state[f"{prefix}block3.0.mlp.fc1_conv.weight"],
                         "0.bias": state[f"{prefix}block3.0.mlp.fc1_conv.bias"],
                         **{f"1.{s}": state[f"{prefix}block3.0.mlp.fc1_bn.{s}"]
                            for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}})
    x = torch.randn(1, 2, 5, 64)  # [T, B, N, C]
    ours = model.eval().backbone.blocks[0].mlp.fc1(x)
    theirs = fc1(x.flatten(0, 1).transpose(1, 2)).transpose(1, 2).reshape(1, 2, 5, 256)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    down = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.BatchNorm2d(32)).eval()
    down.load_state_dict({"0.weight": state[f"{prefix}downsample2.encode_conv.weight"],
                          "0.bias": state[f"{prefix}downsample2.encode_conv.bias"],
                          **{f"1.{s}": state[f"{prefix}downsample2.encode_bn.{s}"]
                             for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}})
    x = torch.randn(1, 1, 16, 8, 8)
    torch.testing.assert_close(model.backbone.down2.conv(x)[0], down(x[0]), rtol=1e-4, atol=1e-4)
    assert fmt in report.summary() and "mismatched 7" in report.summary()


def test_foreign_weights_of_another_width_fit_nothing_and_say_so(tmp_path: Path) -> None:
    path = tmp_path / "sdt.pth"
    torch.save({"model": sdt_v3_state(e=(64, 128, 256, 360))}, path)
    with pytest.raises(CheckpointError, match="sdt_v3 weights, but no tensor fits"):
        build(0, f"model.pretrained={path}")  # the quickstart student: other widths everywhere
    from spiketrack.models.spiking.pretrained import detect_format

    assert detect_format({"backbone.stem.conv.conv.weight": 0}) is None
