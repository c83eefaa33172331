"""`spiketrack model summary`: component parameters add up, MACs match an analytic count, CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spiketrack.cli import main
from spiketrack.config import load_config
from spiketrack.models.command import model_summary

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["model.variant=quickstart", "data.template_size=32", "data.search_size=64"]


def test_teacher_summary_parameters_and_macs() -> None:
    # a 16x16 patch stem with fixed sizes, so the analytic count below holds whatever the quickstart variant is
    patch = "model.overrides={dim: 64, depth: 4, heads: 4, mlp_ratio: 2.0, head_channels: 32, stem: patch}"
    cfg = load_config(ROOT / "configs" / "teacher_vit_tiny.yaml", [*SMALL, patch])
    info = model_summary(cfg)
    p = info["params"]
    assert p["total"] == p["backbone"] + sum(p["streams"].values()) + p["fusion"] + p["head"]
    # analytic dense MACs of the matmul/conv layers (norms and activations are a few % on top)
    c, depth, r, hc = 64, 4, 2.0, 32
    nz, nx = (32 // 16) ** 2, (64 // 16) ** 2
    n = nz + nx
    blocks = depth * (n * (3 * c * c + c * c + 2 * r * c * c) + 2 * n * n * c)
    embed = n * c * 2 * 16 * 16
    widths = [c, hc, hc // 2, hc // 4, hc // 8]
    head = nx * sum(widths[i] * widths[i + 1] * 9 for i in range(4)) * 3 + nx * widths[-1] * (1 + 2 + 2)
    analytic = blocks + embed + head
    assert analytic <= info["macs"]["per_frame"] <= 1.05 * analytic


def test_student_summary_fields() -> None:
    cfg = load_config(ROOT / "configs" / "student_base.yaml", SMALL)
    info = model_summary(cfg)
    p = info["params"]
    assert p["total"] == p["backbone"] + p["memory"] + p["head"]
    assert info["T_x_D"] == "2x2" and info["neuron"]["kind"] == "integer_lif" and info["neuron"]["levels"] == 2
    assert info["inputs"]["search"] == [2, 1, 2, 64, 64]
    m = info["macs"]
    assert m["search_per_timestep"] == m["search_per_frame"] // 2
    assert 0 < m["template_once"] < m["search_per_frame"]  # smaller crop, stops at the last memory point


def test_cli_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["model", "summary", str(ROOT / "configs" / "student_tiny.yaml"), "--json"]
    for s in SMALL:
        args += ["--set", s]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["variant"] == "quickstart" and info["T_x_D"] == "4x1"
    assert main(["model", "summary", str(ROOT / "configs" / "teacher_vit_base.yaml"), "--no-macs",
                 "--set", "model.variant=quickstart"]) == 0
    text = capsys.readouterr().out
    assert "patch_embed.rgb" in text and "fusion" in text
    assert main(["model", "summary", "missing.yaml"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["teacher_vit_tiny", "teacher_vit_base", "student_tiny", "student_base"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.model.kind == ("teacher" if name.startswith("teacher") else "student")
