"""The ViT teacher: shapes per modality, features/attention on request, parameter count, pretrained loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from spiketrack.config import load_config
from spiketrack.errors import CheckpointError, ConfigError
from spiketrack.models import build_model
from spiketrack.models.teacher import ConvStem, PatchEmbed, ViTTeacher, attention_map, load_pretrained

ZS, XS = 32, 64
CHANNELS = {"events": 2, "rgb": 3, "voxel": 5}


def make_teacher(*overrides: str) -> ViTTeacher:
    torch.manual_seed(0)
    cfg = load_config(
        None,
        ["model.kind=teacher", "model.variant=quickstart", f"data.template_size={ZS}", f"data.search_size={XS}",
         *overrides],
    )
    return build_model(cfg)


def inputs(model: ViTTeacher, batch: int = 2) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(0)
    z = {v: torch.rand(batch, CHANNELS[v], ZS, ZS, generator=g) * 3 for v in model.streams}
    x = {v: torch.rand(batch, CHANNELS[v], XS, XS, generator=g) * 3 for v in model.streams}
    return z, x


@pytest.mark.parametrize("modalities", ["events", "rgb+events", "events+voxel"])
def test_shapes_for_every_modality(modalities: str) -> None:
    model = make_teacher(f"model.modalities={modalities}").eval()
    z, x = inputs(model)
    with torch.no_grad():
        out = model(z, x)
    hf = XS // 16
    assert out["score_map"].shape == (2, 1, hf, hf)
    assert out["size_map"].shape == (2, 2, hf, hf)
    assert out["offset_map"].shape == (2, 2, hf, hf)
    assert out["pred_boxes"].shape == (2, 4)
    assert "features" not in out and "attentions" not in out
    assert (model.fuse is None) == (modalities == "events")


def test_every_teacher_variant_builds_with_the_right_width() -> None:
    for variant, dim in (("tiny", 192), ("small", 384), ("base", 768)):
        cfg = load_config(None, ["model.kind=teacher", f"model.variant={variant}"])
        with torch.device("meta"):
            model = build_model(cfg)
            z, x = {"events": torch.rand(1, 2, 128, 128)}, {"events": torch.rand(1, 2, 256, 256)}
            out = model(z, x)  # shape propagation only (meta device)
        assert model.dim == dim and len(model.blocks) == 12
        assert out["score_map"].shape == (1, 1, 16, 16) and out["pred_boxes"].shape == (1, 4)


def test_features_and_attention_on_request_only() -> None:
    model = make_teacher("model.modalities=rgb+events").eval()
    z, x = inputs(model)
    with torch.no_grad():
        plain = model(z, x)
        rich = model(z, x, return_features=True)
    torch.testing.assert_close(plain["score_map"], rich["score_map"])
    n = (XS // 16) ** 2
    assert len(rich["features"]) == len(rich["attentions"]) == len(model.blocks)
    assert rich["features"][0].shape == (2, n, model.dim)
    assert rich["attentions"][0].shape == (2, 4, n, n)
    # search->search block of a softmax over all tokens: non-negative rows summing to at most 1
    a = rich["attentions"][2]
    assert (a >= 0).all() and (a.sum(-1) <= 1 + 1e-5).all()


def test_attention_map_reproduces_timm_attention() -> None:
    model = make_teacher().eval()
    block = model.blocks[1]
    x = torch.randn(2, 20, model.dim)
    with torch.no_grad():
        attn = attention_map(block, x)
        mod = block.attn
        h = block.norm1(x)
        v = mod.qkv(h).reshape(2, 20, 3, mod.num_heads, mod.head_dim).permute(2, 0, 3, 1, 4)[2]
        rebuilt = mod.proj((attn @ v).transpose(1, 2).reshape(2, 20, model.dim))
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, mod.num_heads, 20))
        torch.testing.assert_close(rebuilt, mod(h), atol=1e-5, rtol=1e-4)


def test_base_parameter_count() -> None:
    cfg = load_config(None, ["model.kind=teacher", "model.variant=base"])
    with torch.device("meta"):
        model = build_model(cfg)
    total = sum(p.numel() for p in model.parameters())
    print(f"teacher base (events) {total / 1e6:.2f} M parameters")
    assert abs(total - 92.5e6) <= 0.10 * 92.5e6  # OSTrack-256: ~92.5 M with head (Ye et al., ECCV 2022)


def test_loads_a_timm_vit_state_dict(tmp_path: Path) -> None:
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = tmp_path / "vit_tiny.pth"
    torch.save(vit.state_dict(), path)
    cfg = load_config(
        None,
        ["model.kind=teacher", "model.variant=tiny", "model.modalities=rgb+events", f"model.pretrained={path}",
         f"data.template_size={ZS}", f"data.search_size={XS}"],
    )
    model = build_model(cfg)
    report = model.pretrained_report
    assert report.missing == []
    assert {"cls_token", "head.weight", "head.bias"} <= set(report.unexpected)
    sd, src = model.state_dict(), vit.state_dict()
    torch.testing.assert_close(sd["blocks.11.mlp.fc2.weight"], src["blocks.11.mlp.fc2.weight"])
    torch.testing.assert_close(sd["patch_embed.rgb.proj.weight"], src["patch_embed.proj.weight"])
    # events view: 2 channels, each the mean of the RGB filters, same summed response
    w = src["patch_embed.proj.weight"]
    torch.testing.assert_close(sd["patch_embed.events.proj.weight"], w.sum(1, keepdim=True).repeat(1, 2, 1, 1) / 2)
    # pos embeds: class token dropped; a 14x14 grid resized to 2x2 / 4x4
    assert sd["pos_embed_z"].shape == (1, 4, 192) and sd["pos_embed_x"].shape == (1, 16, 192)
    # MAE-style checkpoint under 'model' with decoder keys: backbone complete, decoder reported unused
    mae = {"model": {**src, "decoder_embed.weight": torch.zeros(4, 4), "mask_token": torch.zeros(1, 1, 192)}}
    torch.save(mae, tmp_path / "mae.pth")
    report2 = load_pretrained(model, tmp_path / "mae.pth")
    assert report2.missing == [] and {"decoder_embed.weight", "mask_token"} <= set(report2.unexpected)


def test_pretrained_errors(tmp_path: Path) -> None:
    model = make_teacher()
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(model, tmp_path / "missing.pth")
    torch.save({"blocks.0.norm1.weight": torch.ones(192)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="blocks.0.norm1.weight"):
        load_pretrained(model, tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_pretrained(model, tmp_path / "junk.pth")


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="model.variant"):
        make_teacher("model.variant=giant")
    with pytest.raises(ConfigError, match="model.modalities"):
        make_teacher("model.modalities=thermal")
    with pytest.raises(ConfigError, match="data.search_size"):
        make_teacher("data.search_size=100")
    with pytest.raises(ConfigError, match="model.overrides.width"):
        make_teacher("model.overrides={width: 3}")
    model = make_teacher("model.modalities=rgb+events")
    z, x = inputs(model)
    with pytest.raises(ConfigError, match="rgb"):
        model({"events": z["events"]}, {"events": x["events"]})


def test_conv_stem_tokens_and_patch_stem_choice() -> None:
    conv = make_teacher("model.overrides={stem: conv}")
    patch = make_teacher("model.overrides={stem: patch}")
    assert isinstance(conv.patch_embed["events"], ConvStem) and isinstance(patch.patch_embed["events"], PatchEmbed)
    stem = conv.patch_embed["events"].eval()
    tokens = stem(torch.rand(2, 2, XS, XS))
    assert tokens.shape == (2, (XS // 16) ** 2, conv.dim)  # stride 16, like the 16x16 patches
    # four stride-2 3x3 convs: widths dim/8, dim/4, dim/2, dim, then the 1x1 projection
    convs = [m for m in stem.proj if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [conv.dim // 8, conv.dim // 4, conv.dim // 2, conv.dim, conv.dim]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 1]
    with pytest.raises(ConfigError, match="model.overrides.stem"):
        make_teacher("model.overrides={stem: hexagon}")
