"""Bad-input probes: CLI invocations with the wrong config values, data, checkpoints, arguments or a full disk.

Each probe runs ``python -m spiketrack.cli ...`` as a new user would, in its own copy of a small fixture folder,
and its outcome is classified:

- ``clean``: the required behaviour. For a refusal: exit code 2 (``data convert``: 1 for a skipped sequence),
  one stderr line naming what the probe says it must name (after the progress lines of the work done, for a
  failure during the work), nothing new left in the folder (a full-disk probe may leave the folders it made, but
  no file). For a probe of a documented success: exit 0 and its check holds.
- ``traceback``: a Python traceback, a crash (signal) or an exit code other than 0, 1, 2.
- ``silent``: exit 0 where the input must be refused (or a success whose result is wrong).
- ``leftover``: refused, but files or folders (or temporary files) were left behind.
- ``vague``: refused in one line that does not name what it must (e.g. ``<unknown file>`` instead of the path),
  several lines, PyTorch's advice to load with ``weights_only=False``, or ANSI codes.

Full-disk probes mount a small tmpfs (they need root; without it they are reported as not run). Every probe
runs under an address-space limit (``--memory-gib``, default 16) so a memory bomb cannot take the machine down.

    python tools/bad_input_probes.py                  # all probes, totals at the end
    python tools/bad_input_probes.py -k probe-,ckpt- -v   # probes whose name contains 'probe-' or 'ckpt-', verbose
    python tools/bad_input_probes.py --repo /other/checkout   # the same probes against another checkout
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FORBIDDEN = ("<unknown file>", "weights_only", "\x1b[")  # never in a message (issues 30/31)
TINY = """\
data:
  datasets: [{root: ds}]
  template_size: 32
  search_size: 64
  samples_per_epoch: 8
  max_gap: 5
model:
  kind: %(kind)s
  variant: quickstart
  timesteps: 2
  overrides: %(overrides)s
train:
  batch_size: 2
  epochs: 1
  lr: 0.001
  grad_clip: 1.0
  keep_last: 1
"""
STUDENT = "{dims: [8, 16, 32, 48], depths: [1, 1], memory_points: [0, 1], heads: 2, head_channels: 16}"
TEACHER = "{dim: 32, depth: 2, heads: 2, head_channels: 16}"


# ------------------------------------------------------------------------------------------------ fixtures
def _sequence(path: Path, frames: int = 12, events_per_frame: int = 200, seed: int = 0) -> None:
    """A 160x120 sequence: a 20x16 box moving right, its pixels firing (events only)."""
    from spiketrack.data.events import EventArray
    from spiketrack.data.h5seq import write_sequence

    rng = np.random.default_rng(seed)
    times = np.arange(1, frames + 1, dtype=np.int64) * 10_000
    boxes, parts = [], []
    for k in range(frames):
        x, y = 30 + 3 * k, 40 + k
        boxes.append([x, y, 20, 16])
        t = np.sort(rng.integers(times[k] - 9_999, times[k] + 1, events_per_frame))
        parts.append(EventArray.from_arrays(t, rng.integers(x, x + 20, events_per_frame),
                                            rng.integers(y, y + 16, events_per_frame), rng.integers(0, 2, events_per_frame)))
    write_sequence(path, name=path.stem, width=160, height=120, events=EventArray.concatenate(parts),
                   frame_times=times, boxes=np.asarray(boxes, np.float32), absent=np.zeros(frames, np.uint8))


def _dataset(root: Path, names: list[str], **kwargs) -> None:
    root.mkdir(parents=True)
    for i, name in enumerate(names):
        _sequence(root / f"{name}.h5", seed=i, **kwargs)
    for split in ("train", "test"):
        (root / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))


def _eventvot(folder: Path, decreasing: bool) -> None:
    """One EventVOT sequence folder: CSV events (x,y,p,t), groundtruth.txt, absent.txt (1 = present)."""
    folder.mkdir(parents=True)
    t = np.arange(1, 401, dtype=np.int64) * 100
    if decreasing:
        t[200], t[201] = t[201], t[200]
    rows = [f"{10 + i % 50},{20 + i % 40},{i % 2},{ti}" for i, ti in enumerate(t)]
    (folder / f"{folder.name}.csv").write_text("\n".join(rows) + "\n")
    (folder / "groundtruth.txt").write_text("".join(f"{10 + k},20,40,30\n" for k in range(4)))
    (folder / "absent.txt").write_text("1\n1\n1\n1\n")


def _cli(args: list[str], cwd: Path, repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "spiketrack.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"fixture command failed: {args}\n{proc.stderr[-2000:]}")
    return proc


def build_fixtures(fx: Path, repo: Path) -> None:
    """Datasets, tiny configs, a tiny teacher and student checkpoint, baseline results, EventVOT folders."""
    _dataset(fx / "ds", ["s0", "s1", "s2"])
    _dataset(fx / "ds1", ["only"])
    _dataset(fx / "long", ["long"], frames=4, events_per_frame=60_000)  # 240k events: several HDF5 chunks
    for kind, overrides in (("student", STUDENT), ("teacher", TEACHER)):
        (fx / f"{kind}.yaml").write_text(TINY % {"kind": kind, "overrides": overrides})
        _cli(["train", f"{kind}.yaml", "--out", f"run_{kind}", "--stop-after", "1",
              "--no-progress"], fx, repo)
        shutil.copy(fx / f"run_{kind}" / "checkpoints" / "ckpt-00000001.pt", fx / f"{kind}.pt")
    (fx / "empty").mkdir()
    _cli(["track", "--tracker", "baseline", "--config", "student.yaml", "--dataset", "ds", "--out", "real_base",
          "--quiet"], fx, repo)
    _cli(["track", "--config", "student.yaml", "--checkpoint", "student.pt", "--dataset", "ds", "--out", "real_model",
          "--energy", "--quiet"], fx, repo)
    _eventvot(fx / "evot_bad" / "rec", decreasing=True)
    _eventvot(fx / "evot" / "rec", decreasing=False)


# ------------------------------------------------------------------------------------------------ mutations
def h5_edit(rel: str, dataset: str, index, value) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        import h5py

        with h5py.File(d / rel, "r+") as h5:
            h5[dataset][index] = value
    return edit


def corrupt_chunk(rel: str, dataset: str, chunk: int) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        import h5py

        with h5py.File(d / rel, "r") as h5:
            info = h5[dataset].id.get_chunk_info(chunk)
        with open(d / rel, "r+b") as fh:
            fh.seek(info.byte_offset + info.size // 4)
            fh.write(b"\xff" * max(8, info.size // 2))
    return edit


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(text if isinstance(text, bytes) else text.encode())
    return edit


def truncate(rel: str, keep: int) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        data = (d / rel).read_bytes()
        (d / rel).write_bytes(data[:keep])
    return edit


def malicious_checkpoint(rel: str) -> Callable[[Path], None]:
    """A checkpoint whose pickle names a Python callable (loading it unsafely would call ``os.getcwd``)."""
    def edit(d: Path) -> None:
        import pickle
        import zipfile

        class Payload:
            def __reduce__(self):
                return (os.getcwd, ())

        with zipfile.ZipFile(d / rel, "w") as zf:
            zf.writestr("ckpt/data.pkl", pickle.dumps({"format": "spiketrack-checkpoint", "model": Payload()}, protocol=2))
            zf.writestr("ckpt/version", "3\n")
    return edit


def damaged_newest_checkpoint(d: Path) -> None:
    """run_student/checkpoints: the good ckpt-1 plus a newer, damaged ckpt-99 (keep_last 1)."""
    ckpts = d / "run_student" / "checkpoints"
    (ckpts / "ckpt-00000099.pt").write_bytes((ckpts / "ckpt-00000001.pt").read_bytes()[:300])


def chain(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        for e in edits:
            e(d)
    return edit


# ------------------------------------------------------------------------------------------------ probes
@dataclass
class Probe:
    name: str
    issue: str
    argv: list[str]
    setup: Callable[[Path], None] | None = None
    mention: tuple[str, ...] = ()  # must be in the error line ({d}: the probe folder)
    expect: str = "refuse"  # or "ok"
    codes: tuple[int, ...] = (2,)  # exit codes of a clean refusal
    check: Callable[[Path, subprocess.CompletedProcess], str | None] | None = None  # for "ok": problem or None
    full_disk: str | None = None  # folder (relative) mounted as a full tmpfs
    disk_kib: int = 0  # tmpfs size; 0 = filled completely before the run
    during_work: bool = False  # fails after the work started: its progress lines may precede the one error line


def _train(*sets: str, cfg: str = "student.yaml", cmd: str = "train", extra: tuple[str, ...] = ()) -> list[str]:
    out = [cmd, cfg, "--out", "newrun", "--no-progress", *extra]
    for s in sets:
        out += ["--set", s]
    return out


def _track(dataset: str = "ds", out: str = "res", *extra: str) -> list[str]:
    return ["track", "--tracker", "baseline", "--dataset", dataset, "--out", out, "--quiet", *extra]


def _probe(*extra: str, out: str = "pr") -> list[str]:
    return ["probe", "template", "--config", "student.yaml", "--tracker", "baseline", "--dataset", "ds", "--out", out,
            "--quiet", *extra]


def _resumed_from_good(d: Path, proc: subprocess.CompletedProcess) -> str | None:
    import torch

    files = sorted((d / "run_student" / "checkpoints").glob("ckpt-*.pt"))
    good = []
    for f in files:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
            good.append((f.name, int(state["step"])))
        except Exception:  # noqa: BLE001 - unreadable: not a good checkpoint
            pass
    if not any(step >= 2 for _, step in good):
        return f"no loadable checkpoint of step >= 2 left: {[f.name for f in files]} (loadable: {good})"
    return None


def _stdout_has(text: str) -> Callable[[Path, subprocess.CompletedProcess], str | None]:
    def check(d: Path, proc: subprocess.CompletedProcess) -> str | None:
        return None if text in proc.stdout + proc.stderr else f"output does not say {text!r}"
    return check


def _file_exists(rel: str) -> Callable[[Path, subprocess.CompletedProcess], str | None]:
    def check(d: Path, proc: subprocess.CompletedProcess) -> str | None:
        return None if (d / rel).is_file() else f"{rel} was not written"
    return check


def probes() -> list[Probe]:
    p = [
        # -- issue 30.1: every config value checked at load time (train would create its run folder)
        Probe("cfg-epochs-0", "30", _train("train.epochs=0"), mention=("train.epochs",)),
        Probe("cfg-lr-nan", "30", _train("train.lr=.nan"), mention=("train.lr",)),
        Probe("cfg-lr-negative", "30", _train("train.lr=-1"), mention=("train.lr",)),
        Probe("cfg-amp-yes", "30", _train("train.amp=yes"), mention=("train.amp",)),
        Probe("cfg-amp-3", "30", _train("train.amp=3"), mention=("train.amp",)),
        Probe("cfg-amp-nan", "30", _train("train.amp=.nan"), mention=("train.amp",)),
        Probe("cfg-keep-last-0", "30", _train("train.keep_last=0"), mention=("train.keep_last",)),
        Probe("cfg-log-every-0", "30", _train("train.log_every=0"), mention=("train.log_every",)),
        Probe("cfg-tau-below-1", "30", _train("model.neuron.tau=0.5"), mention=("model.neuron.tau",)),
        Probe("cfg-levels-0", "30", _train("model.neuron.levels=0"), mention=("model.neuron.levels",)),
        Probe("cfg-negative-prob-1.5", "30", _train("data.negative_prob=1.5"), mention=("data.negative_prob",)),
        Probe("cfg-negative-prob-one-sequence", "30", _train("data.negative_prob=1", "data.datasets=[{root: ds1}]"),
              mention=("data.negative_prob",)),
        Probe("cfg-weight-negative", "30", _train("distill.feature.weight=-1"), mention=("distill.feature.weight",)),
        Probe("cfg-temperature-0", "30", _train("distill.response.temperature=0"),
              mention=("distill.response.temperature",)),
        Probe("cfg-datasets-empty", "30", _train("data.datasets=[]"), mention=("data.datasets",)),
        Probe("cfg-yaml-file", "30", _train(cfg="bad.yaml"), write("bad.yaml", "train:\n  epochs: -2\n"),
              mention=("bad.yaml", "train.epochs")),
        Probe("summary-negative-size", "30", ["model", "summary", "student.yaml", "--set", "data.template_size=-64"],
              mention=("data.template_size",)),
        Probe("summary-zero-timesteps", "30", ["model", "summary", "student.yaml", "--set", "model.timesteps=0"],
              mention=("model.timesteps",)),
        Probe("track-update-interval-0", "30", _track("ds", "res", "--set", "tracking.update_interval=0"),
              mention=("tracking.update_interval",)),
        Probe("track-size-rate-2", "30", _track("ds", "res", "--set", "tracking.size_update_rate=2"),
              mention=("tracking.size_update_rate",)),
        Probe("track-scale-change-half", "30", _track("ds", "res", "--set", "tracking.max_scale_change=0.5"),
              mention=("tracking.max_scale_change",)),
        # -- issue 30.5: refused after start: no run folder left
        Probe("train-variant-unknown", "30", _train("model.variant=huge"), mention=("model.variant",)),
        Probe("train-surrogate-unknown", "30", _train("model.neuron.surrogate=nope"),
              mention=("model.neuron.surrogate",)),
        Probe("train-dataset-missing", "30", _train("data.datasets=[{root: nowhere}]"), mention=("nowhere",)),
        Probe("train-split-empty", "30", _train(), write("ds/train.txt", "# none\n"), mention=("train.txt",)),
        Probe("train-nan-box", "30", _train(), h5_edit("ds/s1.h5", "boxes", 3, [np.nan, 1, 2, 3]),
              mention=("s1.h5", "boxes")),
        Probe("distill-teacher-missing", "30", _train(cmd="distill", extra=("--teacher", "none.pt")),
              mention=("none.pt",)),
        Probe("distill-teacher-is-student", "30", _train(cmd="distill", extra=("--teacher", "student.pt")),
              mention=("student.pt",)),
        Probe("distill-fourier-one-search", "30",
              _train("distill.fourier.enabled=true", cmd="distill", extra=("--teacher", "teacher.pt")),
              mention=("distill.fourier",)),
        # -- issue 30.3: sizes beyond the machine refused before allocation, with the estimate
        Probe("mem-train-template-timesteps", "30", _train("model.template_timesteps=10000", "train.batch_size=16",
                                                           "data.template_size=128", "data.search_size=256"),
              mention=("GiB",)),
        Probe("mem-summary-search-size", "30", ["model", "summary", "student.yaml", "--set", "data.search_size=500000"],
              mention=("GiB",)),
        Probe("mem-summary-teacher-search", "30",
              ["model", "summary", "teacher.yaml", "--set", "data.search_size=500000"], mention=("GiB",)),
        Probe("mem-summary-timesteps", "30", ["model", "summary", "student.yaml", "--set", "model.timesteps=1000000"],
              mention=("GiB",)),
        # -- issue 30.2: boxes and dataset folders
        Probe("validate-empty-folder", "30", ["data", "validate", "empty"], mention=("empty",)),
        Probe("validate-zero-first-box", "30", ["data", "validate", "ds"],
              h5_edit("ds/s0.h5", "boxes", 0, [30, 40, 0, 0]), mention=("s0.h5", "boxes"), codes=(1, 2)),
        Probe("validate-huge-box", "30", ["data", "validate", "ds"],
              h5_edit("ds/s0.h5", "boxes", 5, [1e9, 40, 20, 16]), mention=("s0.h5", "boxes"), codes=(1, 2)),
        Probe("validate-huge-size", "30", ["data", "validate", "ds"],
              h5_edit("ds/s0.h5", "boxes", 5, [30, 40, 1e9, 1e9]), mention=("s0.h5", "boxes"), codes=(1, 2)),
        Probe("track-zero-first-box", "30", _track(), h5_edit("ds/s0.h5", "boxes", 0, [30, 40, 0, 0]),
              mention=("s0.h5", "boxes")),
        Probe("track-huge-box", "30", _track(), h5_edit("ds/s0.h5", "boxes", 5, [1e9, 40, 20, 16]),
              mention=("s0.h5", "boxes")),
        Probe("track-huge-first-size", "30", _track(), h5_edit("ds/s0.h5", "boxes", 0, [30, 40, 1e9, 1e9]),
              mention=("s0.h5", "boxes")),
        Probe("evaluate-zero-first-box", "30", ["evaluate", "--dataset", "ds", "--results", "real_base"],
              h5_edit("ds/s0.h5", "boxes", 0, [30, 40, 0, 0]), mention=("s0.h5", "boxes")),
        Probe("evaluate-huge-box", "30", ["evaluate", "--dataset", "ds", "--results", "real_base"],
              h5_edit("ds/s0.h5", "boxes", 5, [30, 1e9, 20, 16]), mention=("s0.h5", "boxes")),
        Probe("train-zero-first-box", "30", _train(), h5_edit("ds/s0.h5", "boxes", 0, [30, 40, 0, 0]),
              mention=("s0.h5", "boxes")),
        Probe("train-huge-box", "30", _train(), h5_edit("ds/s0.h5", "boxes", 5, [30, 40, 1e9, 16]),
              mention=("s0.h5", "boxes")),
        Probe("track-corrupt-mid-chunk", "30", _track("long", "res", "--split", "test"),
              corrupt_chunk("long/long.h5", "events/x", 2), mention=("long.h5", "events/x")),
        Probe("track-corrupt-mid-t-chunk", "30", _track("long", "res", "--split", "test"),
              corrupt_chunk("long/long.h5", "events/t", 2), mention=("long.h5", "events/t")),
        # -- issue 31.3: our own checkpoint messages, never the advice to load unsafely
        Probe("ckpt-truncated", "31", ["track", "--config", "student.yaml", "--checkpoint", "student.pt",
                                       "--dataset", "ds", "--out", "res", "--quiet"], truncate("student.pt", 2000),
              mention=("student.pt",)),
        Probe("ckpt-malicious", "31", ["track", "--config", "student.yaml", "--checkpoint", "student.pt",
                                       "--dataset", "ds", "--out", "res", "--quiet"], malicious_checkpoint("student.pt"),
              mention=("student.pt", "safety")),
        Probe("ckpt-malicious-pretrained", "31", _train("model.pretrained=student.pt"),
              malicious_checkpoint("student.pt"), mention=("student.pt", "safety")),
        Probe("ckpt-malicious-teacher", "31", _train(cmd="distill", extra=("--teacher", "teacher.pt")),
              malicious_checkpoint("teacher.pt"), mention=("teacher.pt", "safety")),
        Probe("ckpt-not-a-checkpoint", "31", ["energy", "--config", "student.yaml", "--checkpoint", "student.pt",
                                              "--dataset", "ds", "--out", "en"], write("student.pt", b"\x00" * 64),
              mention=("student.pt",)),
        # -- issue 31.1: rotation keeps the newest loadable checkpoints
        Probe("ckpt-resume-damaged-newest", "31",
              ["train", "student.yaml", "--out", "run_student", "--resume", "--stop-after", "2", "--no-progress"],
              damaged_newest_checkpoint, expect="ok", check=_resumed_from_good),
        # -- issue 31.4: convert and decreasing timestamps
        Probe("convert-decreasing-t", "31", ["data", "convert", "--format", "eventvot", "--src", "evot_bad",
                                             "--out", "conv"], mention=("rec", "decrease"), codes=(1, 2)),
        Probe("convert-decreasing-t-sorted", "31", ["data", "convert", "--format", "eventvot", "--src", "evot_bad",
                                                    "--out", "conv", "--sort-events"], expect="ok",
              check=_stdout_has("sorted")),
        Probe("convert-sequence-outside", "31", ["data", "convert", "--format", "eventvot", "--src", "evot",
                                                 "--out", "conv", "--sequence", "../../etc"], mention=("../../etc",)),
        Probe("convert-sequence-unknown", "31", ["data", "convert", "--format", "eventvot", "--src", "evot",
                                                 "--out", "conv", "--sequence", "nope"], mention=("nope",)),
        Probe("validate-split-outside", "31", ["data", "validate", "ds"], write("ds/test.txt", "s0\n../../etc/passwd\n"),
              mention=("test.txt", "line 2", "outside"), codes=(1, 2)),
        # -- issue 31.5: the probe checks its arguments before tracking; no leftover folders
        Probe("probe-protocol", "31", _probe("--protocol", "matlab"), mention=("matlab",)),
        Probe("probe-attribute", "31", _probe("--attribute", "ZZ"), mention=("ZZ",)),
        Probe("probe-real-missing", "31", _probe("--real-results", "nowhere"), mention=("nowhere",)),
        Probe("probe-real-other-settings", "31", _probe("--real-results", "real_base", "--set", "tracking.empty_score_decay=0.3"),
              mention=("real_base", "tracking.empty_score_decay")),
        Probe("probe-real-other-tracker", "31",
              ["probe", "template", "--config", "student.yaml", "--checkpoint", "student.pt", "--dataset", "ds",
               "--out", "pr", "--quiet", "--real-results", "real_base"], mention=("real_base", "tracker")),
        Probe("probe-real-not-results", "31", _probe("--real-results", "empty"), mention=("empty",)),
        Probe("probe-workers-0", "31", _probe("--workers", "0"), mention=("--workers",)),
        Probe("probe-modes-bad", "31", _probe("--modes", "zeroed,upside"), mention=("upside",)),
        Probe("probe-dataset-missing", "31", _probe("--dataset", "nowhere"), mention=("nowhere",)),
        Probe("probe-real-ok", "31", _probe("--real-results", "real_base"), expect="ok",
              check=_file_exists("pr/probe.json")),
        # -- issue 31.5: every command checks its arguments and input folders before its first output
        Probe("track-split-unknown", "31", _track("ds", "res", "--split", "nope"), mention=("nope",)),
        Probe("track-device-cuda", "31", _track("ds", "res", "--device", "cuda:7"), mention=("cuda",)),
        Probe("track-workers-0", "31", _track("ds", "res", "--workers", "0"), mention=("--workers",)),
        Probe("evaluate-results-missing", "31", ["evaluate", "--dataset", "ds", "--results", "real_base", "nowhere",
                                                 "--json", "e.json", "--plots", "plots"], mention=("nowhere",)),
        Probe("energy-dataset-missing", "31", ["energy", "--config", "student.yaml", "--checkpoint", "student.pt",
                                               "--dataset", "nowhere", "--out", "en"], mention=("nowhere",)),
        Probe("report-probe-missing", "31", ["report", "--dataset", "ds", "--run", "a=real_model", "--out", "rep",
                                             "--probe", "a=nowhere"], mention=("nowhere",)),
        Probe("synth-size-small", "31", ["data", "synth", "--out", "syn", "--size", "10x10"], mention=("--size",)),
        Probe("info-missing-file", "31", ["data", "info", "none.h5"], mention=("none.h5",)),
        # -- issues 30.4 / 31.2: a full disk is one line naming the path, no temporary file left
        Probe("full-track", "31", _track("ds", "full/res"), full_disk="full", mention=("full/res",)),
        Probe("full-synth", "31", ["data", "synth", "--out", "full/syn", "--train", "1", "--test", "1", "--frames",
                                   "4:4", "--size", "64x64"], full_disk="full", mention=("full/syn",)),
        Probe("full-convert", "31", ["data", "convert", "--format", "eventvot", "--src", "evot", "--out", "full/conv"],
              full_disk="full", mention=("full/conv",)),
        Probe("full-evaluate-json", "31", ["evaluate", "--dataset", "ds", "--results", "real_base", "--json",
                                           "full/e.json"], full_disk="full", mention=("full/e.json",)),
        Probe("full-evaluate-plots", "31", ["evaluate", "--dataset", "ds", "--results", "real_base", "--plots",
                                            "full/plots"], full_disk="full", mention=("full/plots",)),
        Probe("full-report", "31", ["report", "--dataset", "ds", "--run", "a=real_model", "--out", "full/rep"],
              full_disk="full", mention=("full/rep",)),
        Probe("full-train", "31", _train()[:2] + ["--out", "full/run", "--no-progress"], full_disk="full",
              mention=("full/run",)),
        Probe("full-train-checkpoint", "30", _train()[:2] + ["--out", "full/run", "--no-progress"], full_disk="full",
              disk_kib=48, during_work=True, mention=("full/run",)),
        Probe("full-energy", "31", ["energy", "--config", "student.yaml", "--checkpoint", "student.pt", "--dataset",
                                    "ds", "--out", "full/en"], full_disk="full", mention=("full/en",)),
        Probe("full-probe", "31", _probe(out="full/pr"), full_disk="full", mention=("full/pr",)),
    ]
    names = [x.name for x in p]
    assert len(names) == len(set(names)), "probe names must differ"
    return p


# ------------------------------------------------------------------------------------------------ running
@dataclass
class Outcome:
    probe: Probe
    verdict: str
    rc: int
    seconds: float
    detail: str = ""
    stderr: str = ""
    left: list[str] = field(default_factory=list)


def _snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def _lines(stderr: str) -> list[str]:
    """Non-empty stderr lines, progress bars (\\r-rewritten lines) reduced to their last state and dropped."""
    out = []
    for line in stderr.split("\n"):
        last = line.split("\r")[-1].strip()
        if last and not re.search(r"\d+%\|", last) and not last.startswith("warning:"):
            out.append(last)
    return out


def _mount_small_disk(d: Path, rel: str, kib: int) -> Path | None:
    """A tmpfs of ``kib`` KiB (64 when 0) mounted at ``d/rel``; None when mounting is not allowed (not root)."""
    target = d / rel
    target.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib or 64}k", "tmpfs", str(target)],
                      capture_output=True).returncode != 0:
        return None
    return target


def _fill(target: Path) -> None:
    """Fill the disk of ``target``: every later write there fails with ENOSPC."""
    fd = os.open(target / ".filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _limit(memory_gib: float) -> Callable[[], None]:
    def apply() -> None:
        limit = int(memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run_probe(probe: Probe, fx: Path, work: Path, repo: Path, memory_gib: float, timeout: float) -> Outcome:
    d = work / probe.name
    shutil.copytree(fx, d, symlinks=True)
    mounted = None
    try:
        if probe.setup is not None:
            probe.setup(d)
        if probe.full_disk:
            mounted = _mount_small_disk(d, probe.full_disk, probe.disk_kib)
            if mounted is None:
                return Outcome(probe, "not run", 0, 0.0, "mounting a tmpfs needs root")
            if not probe.disk_kib:
                _fill(mounted)
        before = _snapshot(d)
        env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "spiketrack.cli", *probe.argv], cwd=d, env=env,
                                  capture_output=True, text=True, timeout=timeout, preexec_fn=_limit(memory_gib))
        except subprocess.TimeoutExpired:
            return Outcome(probe, "traceback", -1, timeout, f"timed out after {timeout:.0f} s")
        seconds = time.perf_counter() - start
        new = sorted(_snapshot(d) - before)
        temps = [p for p in new if ".tmp-" in p]
        if probe.full_disk:  # a full disk may leave the folders the command made, not files
            new = [p for p in new if not (d / p).is_dir()]
        return _verdict(probe, proc, d, new, temps, seconds)
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], capture_output=True)


def _verdict(probe: Probe, proc: subprocess.CompletedProcess, d: Path, new: list[str], temps: list[str],
             seconds: float) -> Outcome:
    rc, err = proc.returncode, proc.stderr
    out = Outcome(probe, "", rc, seconds, stderr=err, left=new)
    if "Traceback" in err or rc not in (0, 1, 2):
        out.verdict, out.detail = "traceback", (err.strip().splitlines() or [f"exit {rc}"])[-1][:300]
        return out
    if probe.expect == "ok":
        problem = f"exit {rc}: {(_lines(err) or [''])[-1][:300]}" if rc != 0 else probe.check(d, proc) if probe.check else None
        out.verdict, out.detail = ("clean", "") if problem is None else ("silent", problem)
        return out
    if rc == 0:
        out.verdict, out.detail = "silent", "exit 0"
        return out
    lines = _lines(err)
    if probe.during_work and lines and not any("error" in x for x in lines[:-1]):
        lines = lines[-1:]  # the progress lines of the work done before the failure
    line = " ".join(lines or _lines(proc.stdout))  # data convert reports a skipped sequence in its summary
    missing = [m.format(d=d) for m in probe.mention if m.format(d=d) not in line]
    forbidden = [f for f in FORBIDDEN if f in err]
    if rc not in probe.codes or (probe.codes == (2,) and len(lines) != 1) or missing or forbidden:
        why = (f"exit {rc}" if rc not in probe.codes else f"{len(lines)} lines" if len(lines) != 1 else "")
        why += f" missing {missing}" if missing else ""
        why += f" has {[f.replace(chr(27), 'ESC') for f in forbidden]}" if forbidden else ""
        out.verdict, out.detail = "vague", f"{why.strip()}: {line[:300]}"
        return out
    if new or temps:
        out.verdict, out.detail = "leftover", f"left {(temps or new)[:6]}"
        return out
    out.verdict, out.detail = "clean", line[:300]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="pattern", default="",
                        help="run only probes whose name contains this (comma-separated: any of these)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each probe's stderr")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose spiketrack is probed (default: this)")
    parser.add_argument("--memory-gib", type=float, default=16.0, help="address-space limit of each probe")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per probe")
    parser.add_argument("--keep", action="store_true", help="keep the probe folders (printed at the end)")
    args = parser.parse_args(argv)
    patterns = [k for k in args.pattern.split(",") if k] or [""]
    selected = [p for p in probes() if any(k in p.name for k in patterns)]
    work = Path(tempfile.mkdtemp(prefix="spiketrack-probes-"))
    started = time.time()
    try:
        fx = work / "_fixtures"
        fx.mkdir()
        t0 = time.perf_counter()
        build_fixtures(fx, args.repo)
        print(f"fixtures built in {time.perf_counter() - t0:.1f} s; {len(selected)} probes against {args.repo}")
        outcomes = []
        for probe in selected:
            o = run_probe(probe, fx, work, args.repo.resolve(), args.memory_gib, args.timeout)
            outcomes.append(o)
            print(f"{o.verdict:<9} {probe.name:<34} exit {o.rc:<3} {o.seconds:5.1f} s  {o.detail}", flush=True)
            if args.verbose and o.stderr.strip():
                print("    | " + "\n    | ".join(o.stderr.strip().splitlines()[-8:]))
        totals = Counter(o.verdict for o in outcomes)
        order = ["clean", "traceback", "silent", "leftover", "vague", "not run"]
        print()
        print(f"{len(outcomes)} probes: " + ", ".join(f"{totals.get(v, 0)} {v}" for v in order))
        for issue in sorted({o.probe.issue for o in outcomes}):
            sub = Counter(o.verdict for o in outcomes if o.probe.issue == issue)
            print(f"  issue {issue}: " + ", ".join(f"{sub.get(v, 0)} {v}" for v in order))
        print(f"{time.strftime('%Y-%m-%d', time.localtime(started))}, {platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, {time.time() - started:.0f} s")
        return 0 if totals.get("clean", 0) == len(outcomes) - totals.get("not run", 0) else 1
    finally:
        if args.keep:
            print(f"probe folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
