"""Counter overhead: forward time of the student's search branch with and without the energy counter's hooks.

Usage: OMP_NUM_THREADS=1 .venv/bin/python tools/bench_energy.py [--variant tiny] [--repeats 3] [--threads 1]
Prints a Markdown table row per setting (used for docs/benchmarks.md, section "Energy counter overhead").
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spiketrack.config import load_config
from spiketrack.energy.counter import count_call
from spiketrack.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--search-size", type=int, default=256)
    ap.add_argument("--template-size", type=int, default=128)
    ap.add_argument("--timesteps", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    T = args.timesteps
    cfg = load_config(None, [f"model.variant={args.variant}", f"model.timesteps={T}",
                             f"data.search_size={args.search_size}", f"data.template_size={args.template_size}"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    tb = torch.poisson(torch.full((T, 1, 2, args.template_size, args.template_size), 0.3), generator=g)
    sb = torch.poisson(torch.full((T, 1, 2, args.search_size, args.search_size), 0.3), generator=g)
    with torch.no_grad():
        memory = model.encode_template(tb)
        model.track(sb, memory)  # warm-up

    def plain() -> None:
        with torch.no_grad():
            model.track(sb, memory)

    def counted() -> None:
        count_call(model, sb, memory, timesteps=T, fn=model.track)

    times = {}
    for name, fn in (("plain", plain), ("counted", counted)):
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        times[name] = statistics.median(runs)
    rep, _ = count_call(model, sb, memory, timesteps=T, fn=model.track)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"student {args.variant} ({params:.2f} M params), search {args.search_size}px, T={T}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print("| forward | seconds | overhead |")
    print("|---|---|---|")
    print(f"| without hooks | {times['plain']:.3f} | - |")
    print(f"| with counter | {times['counted']:.3f} | {times['counted'] / times['plain']:.2f}x |")
    print(f"layers counted: {len(rep.layers)}, neurons: {len(rep.neurons)}, MAC {rep.total_mac / 1e9:.4f} G, "
          f"SOP {rep.total_sop / 1e9:.4f} G, firing rate {rep.firing_rate}, {rep.energy_mj():.4f} mJ (45nm-fp32)")


if __name__ == "__main__":
    main()
