"""Neuron backend selection: spikingjelly's variables set before it is imported; 'cuda' maps to Triton."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spiketrack.cli import neuron_backend
from spiketrack.errors import ConfigError
from spiketrack.models.spiking.backend import env_variable, resolve_backend

ROOT = Path(__file__).resolve().parents[3]


def test_resolve_backend_maps_cuda_to_triton(caplog: pytest.LogCaptureFixture) -> None:
    assert env_variable("ilif") == "SJ_ILIF_CUDA_IMPLEMENTATION"
    assert resolve_backend("auto") == "auto" and resolve_backend("torch") == "torch"
    with caplog.at_level("WARNING"):
        assert resolve_backend("cuda") == "triton"
    with pytest.raises(ConfigError, match="model.neuron.backend"):
        resolve_backend("cupy")


def _fresh(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SJ_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_select_backend_before_import_reaches_spikingjelly() -> None:
    code = (
        "import json, os, sys\n"
        "from spiketrack.models.spiking.backend import select_backend\n"
        "before = 'spikingjelly' in sys.modules\n"
        "select_backend('cuda')\n"
        "import spikingjelly.activation_based.neuron\n"
        "print(json.dumps([before, os.environ.get('SJ_LIF_CUDA_IMPLEMENTATION'), "
        "os.environ.get('SJ_ILIF_CUDA_IMPLEMENTATION')]))\n"
    )
    assert _fresh(code) == [False, "triton", "triton"]


def test_cli_reads_the_backend_of_the_named_config(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("model:\n  kind: student\n  neuron:\n    backend: torch\n")
    assert neuron_backend(["train", str(cfg)]) == "torch"
    assert neuron_backend(["track", "--config", str(cfg), "--set", "model.neuron.backend=triton"]) == "triton"
    assert neuron_backend(["quickstart", "--set", "student.model.neuron.backend=cuda"]) == "cuda"
    assert neuron_backend(["quickstart"]) == "auto"
    assert neuron_backend(["evaluate", "results"]) == "auto"
    code = (
        "import json, os\n"
        "from spiketrack.cli import main\n"
        f"main(['model', 'summary', {str(cfg)!r}, '--no-macs', '--set', 'model.variant=quickstart'])\n"
        "print(json.dumps(os.environ.get('SJ_LIF_CUDA_IMPLEMENTATION')))\n"
    )
    assert _fresh(code) == "torch"
