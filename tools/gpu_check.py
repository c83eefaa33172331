"""The first-GPU check: one command, one table, a few minutes.

    .venv/bin/python tools/gpu_check.py                      # on a CUDA machine (about 2-5 minutes on one H100)
    .venv/bin/python tools/gpu_check.py --device cpu --quick # the same code, CI-sized, on CPU (tests/test_gpu_check.py)

What it runs, per neuron backend (``model.neuron.backend``: auto, torch, triton, cuda), each in its own process
(spikingjelly picks its CUDA implementation when it is imported, so a backend cannot change inside one process):

- ``neurons``: LIF and I-LIF (D = 4) on the device against spikingjelly's Torch path on CPU, forward spikes and
  input gradients, float32 and under bf16 autocast (where the membrane must stay float32): the largest difference,
  and the implementation spikingjelly binds;
- ``train step``: one optimiser step (AMP where the device is CUDA, ``train.amp``) of every shipped config through
  the trainer's own code (data sampling from a small synthetic dataset, loss, backward, clipping, step); students
  under every backend, teachers once (they have no spiking neurons): loss, time, peak GPU memory. ``--quick`` runs
  the quickstart configs under ``auto`` only (on CPU every backend runs the same Torch path);
- ``track fps``: frames per second of the model calls at batch 1 (template encoded once, ``track`` per frame,
  random weights and inputs of the configured sizes): teachers and students (quickstart conv and MetaFormer,
  deployable, tiny, base);
- ``ddp step``: with two or more GPUs (or on CPU), one training step of the quickstart-size MetaFormer student in two
  processes (NCCL / gloo) with ``train.sync_bn``: whether both processes end with the same weights.

The table goes to stdout (Markdown); ``--json FILE`` keeps the rows. Exit code 1 when a row failed. A process that
crashes or hangs is a failed row naming its exit code, not a lost table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = ("auto", "torch", "triton", "cuda")
STUDENTS = ("quickstart_student_conv", "quickstart_student", "quickstart_student_deployable", "student_tiny", "student_base")
TEACHERS = ("quickstart_teacher", "teacher_vit_tiny", "teacher_vit_base")
QUICK_STUDENTS = ("quickstart_student_conv", "quickstart_student", "quickstart_student_deployable")
QUICK_TEACHERS = ("quickstart_teacher",)
COLUMNS = ("check", "subject", "backend", "implementation", "result", "ms", "peak MiB", "value")


# ------------------------------------------------------------------------------------------------ data
def write_dataset(root: Path, sequences: int = 3, frames: int = 12, size: int = 160) -> Path:
    """A few sequences of a bright square moving over noise, with events and RGB frames (training samples)."""
    import numpy as np

    from spiketrack.data.dataset import write_split
    from spiketrack.data.events import EventArray
    from spiketrack.data.h5seq import write_sequence

    names = []
    for s in range(sequences):
        rng = np.random.default_rng(s)
        w = h = int(rng.integers(20, 30))
        x0, y0 = rng.uniform(30, size - w - 30, size=2)
        v = rng.uniform(-2, 2, size=2)
        times = (np.arange(frames) + 1) * 10_000
        boxes, parts, images = [], [], []
        for k in range(frames):
            x, y = np.clip([x0 + v[0] * k, y0 + v[1] * k], 0, size - w)
            boxes.append([x, y, w, h])
            n = 600
            ex = np.concatenate([rng.uniform(x, x + w, n), rng.uniform(0, size, 80)])
            ey = np.concatenate([rng.uniform(y, y + h, n), rng.uniform(0, size, 80)])
            t = np.sort(rng.integers(times[k] - 9_999, times[k] + 1, n + 80))
            parts.append(EventArray.from_arrays(t, np.clip(ex, 0, size - 1), np.clip(ey, 0, size - 1),
                                                rng.integers(0, 2, n + 80)))
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[int(y):int(y) + h, int(x):int(x) + w] = 220
            images.append(img)
        name = f"seq{s}"
        write_sequence(root / f"{name}.h5", name=name, width=size, height=size, events=EventArray.concatenate(parts),
                       frame_times=times, boxes=np.asarray(boxes, np.float32), absent=np.zeros(frames, np.uint8),
                       rgb=np.stack(images))
        names.append(name)
    write_split(root, "train", names)
    return root


def config(name: str, data: Path, backend: str | None, quick: bool, *extra: str) -> Any:
    """Config ``configs/<name>.yaml`` on the synthetic dataset, one optimiser step, the given neuron backend."""
    from spiketrack.config import load_config

    sets = [f"data.datasets=[{{root: '{data}', weight: 1.0}}]", "data.num_workers=0", "train.preload_mb=0",
            "train.steps_per_epoch=1", "train.epochs=1", "model.pretrained=null", "train.log_every=1"]
    if backend is not None:
        sets.append(f"model.neuron.backend={backend}")
    if quick:
        sets.append("train.batch_size=2")
    return load_config(ROOT / "configs" / f"{name}.yaml", [*sets, *extra])


# ------------------------------------------------------------------------------------------------ rows
def row(check: str, subject: str, backend: str, **kw: Any) -> dict[str, Any]:
    out = {"check": check, "subject": subject, "backend": backend, "implementation": "-", "result": "ok",
           "ms": None, "peak MiB": None, "value": ""}
    out.update(kw)
    return out


def failed(check: str, subject: str, backend: str, exc: BaseException) -> dict[str, Any]:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return row(check, subject, backend, result=f"FAIL {text[:160]}", trace=traceback.format_exc())


class Meter:
    """Wall time and peak GPU memory of one block (CUDA synchronised)."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, device

    def __enter__(self) -> Meter:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
            self.torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
            self.peak = self.torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak = None
        self.ms = (time.perf_counter() - self.start) * 1e3


# ------------------------------------------------------------------------------------------------ checks
def neuron_rows(backend: str, device: Any, quick: bool) -> list[dict[str, Any]]:
    """LIF / I-LIF on the device against spikingjelly's Torch path on CPU (forward spikes, input gradients)."""
    import torch

    from spiketrack.config import NeuronConfig
    from spiketrack.models.spiking.neurons import check_backend, make_neuron

    rows = []
    shape = (4, 2, 256) if quick else (4, 8, 64 * 64)
    for kind, levels in (("lif", 1), ("integer_lif", 4)):
        cfg = NeuronConfig(kind=kind, levels=levels, backend=backend)
        for amp in (None, torch.bfloat16):
            subject = f"{kind} D={levels}" + (" bf16 autocast" if amp else " fp32")
            try:
                impl = check_backend(cfg, device, amp)
                g = torch.Generator().manual_seed(0)
                x = (torch.randn(*shape, generator=g) * 2).to(torch.bfloat16).float()  # exact in bf16 too
                up = torch.randn(*shape, generator=g)
                ref_x = x.clone().requires_grad_()
                ref = make_neuron(cfg)(ref_x)
                (ref * up).sum().backward()
                dev_x = (x.to(torch.bfloat16) if amp else x).to(device).requires_grad_()
                neuron = make_neuron(cfg).to(device)
                with Meter(device) as m, torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    out = neuron(dev_x)
                    (out.float() * up.to(device)).sum().backward()
                membrane = neuron.v.dtype
                d_spike = float((out.detach().float().cpu() - ref.detach()).abs().max())
                d_grad = float((dev_x.grad.float().cpu() - ref_x.grad).abs().max())
                ok = d_spike == 0 and d_grad <= (5e-2 if amp else 1e-5) and membrane == torch.float32
                rows.append(row("neurons", subject, backend, implementation=impl, ms=m.ms, **{"peak MiB": m.peak},
                                result="ok" if ok else "FAIL disagrees with the Torch path",
                                value=f"max |d spike| {d_spike:.1e}, max |d grad| {d_grad:.1e}, membrane {membrane}"))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a row
                rows.append(failed("neurons", subject, backend, exc))
    return rows


def train_row(name: str, data: Path, backend: str | None, device: Any, quick: bool, work: Path) -> dict[str, Any]:
    """One optimiser step of config ``name`` through the trainer (AMP on CUDA)."""
    import torch

    from spiketrack.models import build_model
    from spiketrack.train.distributed import DistInfo
    from spiketrack.train.trainer import Trainer, seed_everything

    label = backend or "-"
    try:
        cfg = config(name, data, backend, quick)
        seed_everything(0)
        info = DistInfo(rank=0, world_size=1, local_rank=0, device=device)
        trainer = Trainer(cfg, work / f"{name}-{label}", build_model(cfg), info, progress=False)
        batch = next(iter(trainer._loader(0, 0)))
        with Meter(device) as m:
            terms = trainer._optimizer_step([batch])
        impl = "-"
        if cfg.model.kind == "student":
            from spiketrack.models.spiking.neurons import implementation

            impl = implementation(cfg.model.neuron, device)
        loss = terms["loss"]
        amp = f" ({str(trainer.amp_dtype).removeprefix('torch.')} autocast)" if trainer.use_amp else ""
        ok = bool(torch.isfinite(torch.tensor(loss)))
        return row("train step", name, label, implementation=impl, ms=m.ms, **{"peak MiB": m.peak},
                   result="ok" if ok else "FAIL non-finite loss", value=f"loss {loss:.4f}{amp}")
    except Exception as exc:  # noqa: BLE001
        return failed("train step", name, label, exc)


def fps_row(name: str, data: Path, backend: str | None, device: Any, quick: bool) -> dict[str, Any]:
    """Frames per second of the model calls at batch 1 (template once, ``track`` per frame)."""
    import torch

    from spiketrack.models import build_model
    from spiketrack.models.command import student_inputs, teacher_inputs

    label = backend or "-"
    try:
        cfg = config(name, data, backend, quick)
        model = build_model(cfg).to(device).eval()
        spec = model.input_spec
        template, search = student_inputs(cfg) if spec.timesteps else teacher_inputs(cfg, spec.views)
        move = (lambda x: x.to(device)) if spec.timesteps else (lambda x: {k: v.to(device) for k, v in x.items()})
        template, search = move(template), move(search)
        warm, frames = (1, 2) if quick else (5, 50)
        with torch.no_grad():
            state = model.encode_template(template)
            for _ in range(warm):
                model.track(search, state)
            with Meter(device) as m:
                for _ in range(frames):
                    model.track(search, state)
        return row("track fps", name, label, ms=m.ms / frames, **{"peak MiB": m.peak},
                   value=f"{frames / (m.ms / 1e3):.1f} frames/s (batch 1, {frames} frames)")
    except Exception as exc:  # noqa: BLE001
        return failed("track fps", name, label, exc)


def backend_child(backend: str, device_name: str, quick: bool, data: str, work: str, queue: Any) -> None:
    """One process per backend: the backend is chosen before spikingjelly is imported."""
    from spiketrack.models.spiking.backend import select_backend

    select_backend(backend)
    import torch

    torch.manual_seed(0)
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    try:
        device = torch.device(device_name)
        if device.type == "cuda":
            info = {"gpu": torch.cuda.get_device_name(device), "gpus": torch.cuda.device_count(),
                    "capability": ".".join(map(str, torch.cuda.get_device_capability(device)))}
        students = QUICK_STUDENTS if quick else STUDENTS
        teachers = QUICK_TEACHERS if quick else TEACHERS
        rows += neuron_rows(backend, device, quick)
        mine = students if not quick or backend == "auto" else ()  # on CPU every backend runs the same Torch path
        for name in mine:
            rows.append(train_row(name, Path(data), backend, device, quick, Path(work)))
        if backend == "auto":  # teachers have no spiking neurons: once
            for name in teachers:
                rows.append(train_row(name, Path(data), None, device, quick, Path(work)))
        for name in mine:
            rows.append(fps_row(name, Path(data), backend, device, quick))
        if backend == "auto":
            for name in teachers:
                rows.append(fps_row(name, Path(data), None, device, quick))
    except Exception as exc:  # noqa: BLE001
        rows.append(failed("process", backend, backend, exc))
    queue.put((info, rows))


def ddp_child(rank: int, world: int, port: int, device_name: str, quick: bool, data: str, work: str, queue: Any) -> None:
    """One rank of a 2-process training step of the quickstart student with train.sync_bn."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    import torch
    import torch.distributed as dist

    from spiketrack.models import build_model
    from spiketrack.train.distributed import cleanup_distributed, setup_distributed
    from spiketrack.train.trainer import Trainer, seed_everything

    torch.set_num_threads(1)
    try:
        info = setup_distributed(device_name)
        cfg = config("quickstart_student", Path(data), "auto", quick, "train.sync_bn=true")
        seed_everything(0)
        trainer = Trainer(cfg, Path(work) / f"ddp{rank}", build_model(cfg), info, progress=False)
        batch = next(iter(trainer._loader(0, 0)))
        with Meter(info.device) as m:
            terms = trainer._optimizer_step([batch])
        checksum = torch.stack([p.detach().double().sum() for p in trainer.model.parameters()]).sum().to(info.device)
        sums = [torch.zeros_like(checksum) for _ in range(world)]
        dist.all_gather(sums, checksum)
        same = all(float(s) == float(sums[0]) for s in sums)
        queue.put(row("ddp step", f"quickstart_student x{world} (sync_bn)", "auto",
                      result="ok" if same else "FAIL weights differ between processes", ms=m.ms,
                      **{"peak MiB": m.peak}, value=f"loss {terms['loss']:.4f}; {dist.get_backend()}"))
    except Exception as exc:  # noqa: BLE001
        queue.put(failed("ddp step", "quickstart_student", "auto", exc))
    finally:
        cleanup_distributed()


# ------------------------------------------------------------------------------------------------ driver
def run_children(targets: list[tuple[Any, tuple]], timeout: float, label: str) -> list[Any]:
    """Start the processes (fork: they inherit the imported modules; CUDA is touched only inside them) and
    collect what each put on its queue; a process that crashed or ran out of time is a failed row."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, queue)) for fn, args in targets]
    for p in procs:
        p.start()
    results: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(results) < len(procs):
        left = deadline - time.monotonic()
        try:
            results.append(queue.get(timeout=max(min(left, 5.0), 0.01)))
        except Exception:  # noqa: BLE001 - queue.Empty: check for dead or late processes
            if left <= 0 or all(not p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
    if len(results) < len(procs):
        codes = [p.exitcode for p in procs]
        results.append(row("process", label, "-", result=f"FAIL exit codes {codes} (crash or over {timeout:.0f} s)"))
    return results


def render(rows: list[dict[str, Any]], header: str) -> str:
    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key in ("ms", "peak MiB"):
            return f"{value:.1f}" if key == "ms" else f"{value:.0f}"
        return str(value)

    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(k, r.get(k)) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="CI size: quickstart configs, batch 2, few frames")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated neuron backends")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per process (default 240; quick 120)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or args.device.split(":")[0] not in ("cpu", "cuda"):
        parser.error(f"--backends from {BACKENDS}, --device cpu or cuda (got {unknown or args.device})")
    timeout = args.timeout or (120.0 if args.quick else 240.0)
    start = time.perf_counter()
    # imported once here and inherited by every process; none of them imports spikingjelly, whose CUDA
    # implementation each backend process chooses before importing it
    import spiketrack.models.command  # noqa: F401
    import spiketrack.train.trainer  # noqa: F401

    assert not any(m.startswith("spikingjelly") for m in sys.modules), "spikingjelly must not be imported yet"
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        data = write_dataset(Path(tmp) / "data")
        for backend in backends:
            for result in run_children([(backend_child, (backend, args.device, args.quick, str(data), tmp))],
                                       timeout, backend):
                if isinstance(result, tuple):
                    info = info or result[0]
                    rows += result[1]
                else:
                    rows.append(result)
        gpus = int(info.get("gpus", 0))
        if args.device == "cpu" or gpus >= 2:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            targets = [(ddp_child, (r, 2, port, args.device, args.quick, str(data), tmp)) for r in range(2)]
            ddp = run_children(targets, timeout, "ddp")
            bad = [r for r in ddp if r["result"] != "ok"]
            rows += bad or ddp[:1]  # both ranks report the same step: one row, or every failure
        else:
            rows.append(row("ddp step", "quickstart_student x2", "-", result="skipped (fewer than 2 GPUs)"))
    from importlib.metadata import version

    import torch

    where = info.get("gpu", "CPU") + (f" (capability {info['capability']}, {info['gpus']} GPU(s))" if info else "")
    header = (f"gpu_check on {where}: torch {torch.__version__}, spikingjelly {version('spikingjelly')}, "
              f"{'quick' if args.quick else 'full'} run, {time.perf_counter() - start:.0f} s")
    print(render(rows, header))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "rows": rows}, indent=1, default=str) + "\n")
    return 1 if any(str(r["result"]).startswith("FAIL") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
