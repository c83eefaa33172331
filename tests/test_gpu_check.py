"""tools/gpu_check.py --device cpu --quick: the GPU check's own code, CI-sized, prints one table and passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_quick_on_cpu_prints_one_passing_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SJ_")}  # spikingjelly's own choice for 'auto'
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("gpu_check on CPU") and "| check | subject | backend |" in proc.stdout
    assert sum(line.startswith("| ") for line in lines) == 1 + len(json.loads(out.read_text())["rows"])  # one table
    rows = json.loads(out.read_text())["rows"]
    assert all(r["result"] == "ok" for r in rows), [r for r in rows if r["result"] != "ok"]
    by_check: dict[str, list[dict]] = {}
    for r in rows:
        by_check.setdefault(r["check"], []).append(r)
    # every backend: LIF and I-LIF, float32 and bf16 autocast, against the Torch path; the membrane stays float32
    assert {r["backend"] for r in by_check["neurons"]} == {"auto", "torch", "triton", "cuda"}
    assert len(by_check["neurons"]) == 16 and all("membrane torch.float32" in r["value"] for r in by_check["neurons"])
    assert {r["subject"] for r in by_check["train step"]} == {"quickstart_student_conv", "quickstart_student",
                                                             "quickstart_student_deployable", "quickstart_teacher"}
    assert all(r["value"].startswith("loss ") for r in by_check["train step"])
    assert len(by_check["track fps"]) == 4 and all("frames/s" in r["value"] for r in by_check["track fps"])
    (ddp,) = by_check["ddp step"]
    assert "gloo" in ddp["value"]  # two processes ended with the same weights (sync_bn on)
