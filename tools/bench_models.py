"""Per-frame latency of the student's search branch (template memory cached) and of the teacher, batch 1.

Usage: ``python tools/bench_models.py [--repeats 5] [--threads 2] [--quick]``. Prints a Markdown table
(median of ``--repeats`` timed runs after one warm-up). On CPU it times inference; with CUDA available
it also reports GPU frames/s of both models and the forward+backward time of spikingjelly's CUDA LIF
path against its Torch path. ``--quick`` skips the tiny/base models (quickstart variants only).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from spiketrack.config import NeuronConfig, load_config
from spiketrack.models import build_model
from spiketrack.models.command import student_inputs, teacher_inputs
from spiketrack.models.spiking.neurons import implementation, make_neuron


def _time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_student(variant: str, zs: int, xs: int, t: int, device: torch.device, repeats: int) -> tuple[float, float]:
    """(search-branch seconds per frame, template-encoding seconds) at batch 1."""
    cfg = load_config(None, ["model.kind=student", f"model.variant={variant}", f"model.timesteps={t}",
                             f"data.template_size={zs}", f"data.search_size={xs}"])
    model = build_model(cfg).eval().to(device)
    template, search = (x.to(device) for x in student_inputs(cfg))
    with torch.no_grad():
        memory = model.encode_template(template)
        search_s = _time(lambda: model.track(search, memory), repeats, device)
        template_s = _time(lambda: model.encode_template(template), max(1, repeats // 2), device)
    return search_s, template_s


def bench_teacher(variant: str, modalities: str, zs: int, xs: int, device: torch.device, repeats: int) -> float:
    """Teacher seconds per frame at batch 1."""
    cfg = load_config(None, ["model.kind=teacher", f"model.variant={variant}", f"model.modalities={modalities}",
                             f"data.template_size={zs}", f"data.search_size={xs}"])
    model = build_model(cfg).eval().to(device)
    template, search = teacher_inputs(cfg, model.streams)
    template = {k: v.to(device) for k, v in template.items()}
    search = {k: v.to(device) for k, v in search.items()}
    with torch.no_grad():
        return _time(lambda: model(template, search), repeats, device)


def bench_train_step(kind: str, zs: int, xs: int, t: int, batch: int, repeats: int) -> float:
    """Seconds of one forward+backward of a quickstart model in train mode (CPU), for demo planning."""
    cfg = load_config(None, [f"model.kind={kind}", "model.variant=quickstart", f"model.timesteps={t}",
                             f"data.template_size={zs}", f"data.search_size={xs}"])
    model = build_model(cfg).train()
    if kind == "student":
        template, search = student_inputs(cfg, batch)

        def step() -> None:
            out = model(template, search, return_features=True)
            (out["score_map"].mean() + out["size_map"].mean() + out["features"][-1].mean()).backward()
    else:
        template, search = teacher_inputs(cfg, model.streams, batch)

        def step() -> None:
            out = model(template, search, return_features=True)
            (out["score_map"].mean() + out["size_map"].mean() + out["features"][-1].mean()).backward()

    return _time(step, repeats, torch.device("cpu"))


def bench_lif(device: torch.device, repeats: int) -> tuple[float, float]:
    """Forward+backward seconds of a [4, 32, 256, 32, 32] LIF layer: automatic (CUDA) path vs Torch path."""
    x = torch.randn(4, 32, 256, 32, 32, device=device)
    out = []
    for backend in ("auto", "torch"):
        neuron = make_neuron(NeuronConfig(backend=backend))

        def step() -> None:
            xi = x.detach().requires_grad_()
            neuron.reset()
            neuron(xi).sum().backward()

        out.append(_time(step, repeats, device))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: no spin-waiting on a shared machine)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        cases: list[tuple[str, Callable[[], float | tuple[float, float]]]] = [
            ("student quickstart, 64/128, T=4", lambda d=device: bench_student("quickstart", 64, 128, 4, d, args.repeats)),
            ("teacher quickstart (events), 64/128", lambda d=device: bench_teacher("quickstart", "events", 64, 128, d, args.repeats)),
        ]
        if not args.quick:
            cases += [
                ("student tiny, 128/256, T=4", lambda d=device: bench_student("tiny", 128, 256, 4, d, args.repeats)),
                ("student base, 128/256, T x D=2x2", lambda d=device: bench_student("base", 128, 256, 2, d, args.repeats)),
                ("teacher tiny (events), 128/256", lambda d=device: bench_teacher("tiny", "events", 128, 256, d, args.repeats)),
                ("teacher base (events), 128/256", lambda d=device: bench_teacher("base", "events", 128, 256, d, args.repeats)),
                ("teacher base (rgb+events), 128/256", lambda d=device: bench_teacher("base", "rgb+events", 128, 256, d, args.repeats)),
            ]
        for name, fn in cases:
            result = fn()
            if isinstance(result, tuple):
                search_s, template_s = result
                rows.append((device.type, name, search_s * 1e3, 1 / search_s, f"template encode {template_s * 1e3:.1f} ms"))
            else:
                rows.append((device.type, name, result * 1e3, 1 / result, ""))
            print(f"{device.type:5s} {name:40s} {rows[-1][2]:9.1f} ms  {rows[-1][3]:7.2f} frames/s  {rows[-1][4]}", flush=True)
        if device.type == "cuda":
            auto_s, torch_s = bench_lif(device, args.repeats)
            impl = implementation(NeuronConfig(), device)
            rows.append(("cuda", f"LIF fwd+bwd [4,32,256,32,32]: {impl} vs torch", auto_s * 1e3, torch_s / auto_s,
                         f"torch path {torch_s * 1e3:.2f} ms; speed-up {torch_s / auto_s:.1f}x"))
    for kind in ("teacher", "student"):
        sec = bench_train_step(kind, 64, 128, 4, 16, max(1, args.repeats // 2))
        rows.append(("cpu", f"{kind} quickstart train step (fwd+bwd, features), batch 16, 64/128, T=4", sec * 1e3,
                     16 / sec, "frames/s = training samples/s"))
        print(f"cpu   {rows[-1][1]:40s} {sec * 1e3:9.1f} ms", flush=True)
    print("\n| device | model (template/search px) | ms / frame (search branch) | frames/s | note |")
    print("|---|---|---:|---:|---|")
    for dev, name, ms, fps, note in rows:
        print(f"| {dev} | {name} | {ms:.1f} | {fps:.2f} | {note} |")


if __name__ == "__main__":
    main()
