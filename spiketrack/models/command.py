"""`spiketrack model summary CONFIG`: parameters per component, input shapes, neuron settings, dense MACs.

The library function is :func:`model_summary` (same result from Python). Dense MACs are counted with
ultralytics-thop (``thop.profile``: conv/linear/norm layers plus the matmuls and fused attention it
sees), at batch 1. For the student, a frame is T timesteps: the search branch (template memory cached)
is profiled on one [T, 1, 2, Hs, Ws] input, and the per-timestep figure is that divided by T. These are
dense counts; the energy counter (``spiketrack energy``) turns them into SOPs/MACs by firing activity.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch import nn

from spiketrack.config import ExperimentConfig, load_config
from spiketrack.data.inputs import view_channels
from spiketrack.models import build_model


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _param_tensor(p: nn.Parameter | None) -> int:
    return 0 if p is None else p.numel()


class _SearchBranch(nn.Module):
    """``model.track(search, state)`` with the template state fixed (what runs every frame)."""

    def __init__(self, model: nn.Module, state: Any) -> None:
        super().__init__()
        self.model = model
        self.state = state

    def forward(self, search: Any) -> Any:
        return self.model.track(search, self.state)


class _TemplateBranch(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, template: torch.Tensor) -> Any:
        return self.model.encode_template(template)


def _macs(module: nn.Module, inputs: tuple) -> int:
    from thop import profile

    macs, _ = profile(module, inputs=inputs, verbose=False)
    return int(macs)


def teacher_inputs(cfg: ExperimentConfig, streams: tuple[str, ...], batch: int = 1) -> tuple[dict, dict]:
    """Random template/search inputs of the teacher's views: view -> [B, C, H, W]."""
    ch = {v: view_channels(v, cfg.data.voxel_bins) for v in streams}
    zs, xs = cfg.data.template_size, cfg.data.search_size
    template = {v: torch.rand(batch, ch[v], zs, zs) for v in streams}
    search = {v: torch.rand(batch, ch[v], xs, xs) for v in streams}
    return template, search


def student_inputs(cfg: ExperimentConfig, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random Poisson event bins: template [T_t, B, 2, Ht, Wt], search [T, B, 2, Hs, Ws]."""
    t, zs, xs = cfg.model.timesteps, cfg.data.template_size, cfg.data.search_size
    tt = cfg.model.template_timesteps or t
    gen = torch.Generator().manual_seed(0)
    template = torch.poisson(torch.full((tt, batch, 2, zs, zs), 0.5), generator=gen)
    search = torch.poisson(torch.full((t, batch, 2, xs, xs), 0.5), generator=gen)
    return template, search


def model_summary(cfg: ExperimentConfig, macs: bool = True) -> dict[str, Any]:
    """Summary of the model ``cfg`` builds: parameters per component, input shapes, neuron, T x D, dense MACs."""
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    m = cfg.model
    zs, xs = cfg.data.template_size, cfg.data.search_size
    info: dict[str, Any] = {"name": cfg.name, "kind": m.kind, "variant": m.variant, "modalities": m.modalities}
    total = _count(model)
    if m.kind == "teacher":
        streams = {f"patch_embed.{v}": _count(model.patch_embed[v]) for v in model.streams}
        if model.modality_embed is not None:
            streams["modality_embed"] = _param_tensor(model.modality_embed)
        backbone = _count(model.blocks) + _count(model.norm) + model.pos_embed_z.numel() + model.pos_embed_x.numel()
        info["params"] = {
            "total": total,
            "backbone": backbone,
            "streams": streams,
            "fusion": _count(model.fuse),
            "head": _count(model.head),
        }
        ch = model.input_spec.channels
        info["inputs"] = {
            "template": {v: [1, ch[v], zs, zs] for v in model.streams},
            "search": {v: [1, ch[v], xs, xs] for v in model.streams},
        }
        info["feature_map"] = [model.search_grid, model.search_grid]
        if macs:
            template, search = teacher_inputs(cfg, model.streams)
            with torch.no_grad():
                state = model.encode_template(template)
                info["macs"] = {"per_frame": _macs(_SearchBranch(model, state), (search,))}
    else:
        from spiketrack.models.spiking.neurons import implementation, neuron_levels

        parts = model.summary_parts() if hasattr(model, "summary_parts") else {
            "backbone": model.backbone, "memory": model.memory, "head": model.head}
        info["params"] = {"total": total, **{k: _count(v) for k, v in parts.items()}}
        t = m.timesteps
        d = neuron_levels(m.neuron)
        info["inputs"] = {"template": [m.template_timesteps or t, 1, 2, zs, zs], "search": [t, 1, 2, xs, xs]}
        stride = getattr(model, "output_stride", 16)
        info["feature_map"] = [xs // stride, xs // stride]
        info["neuron"] = {
            "kind": m.neuron.kind,
            "levels": d,
            "tau": m.neuron.tau,
            "v_threshold": m.neuron.v_threshold,
            "surrogate": f"{m.neuron.surrogate}(alpha={m.neuron.surrogate_alpha})",
            "detach_reset": m.neuron.detach_reset,
            "backend": m.neuron.backend,
            "implementation_cpu": implementation(m.neuron, torch.device("cpu")),
        }
        info["timesteps"] = t
        info["T_x_D"] = f"{t}x{d}"
        info["memory_points"] = list(getattr(model, "memory_points", []))
        if macs:
            template, search = student_inputs(cfg)
            with torch.no_grad():
                memory = model.encode_template(template)
                search_macs = _macs(_SearchBranch(model, memory), (search,))
                template_macs = _macs(_TemplateBranch(model), (template,))
            info["macs"] = {
                "search_per_frame": search_macs,
                "search_per_timestep": search_macs // t,
                "template_once": template_macs,
            }
    return info


def _fmt(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3f} {unit}"
    return str(n)


def format_summary(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`model_summary`'s result."""
    lines = [f"{info['name']}: {info['kind']} '{info['variant']}' ({info['modalities']})", "parameters:"]

    def walk(d: dict[str, Any], indent: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                lines.append(f"{indent}{k}:")
                walk(v, indent + "  ")
            else:
                lines.append(f"{indent}{k:<22} {_fmt(v)} ({v:,})")

    walk(info["params"], "  ")
    lines.append(f"inputs: {info['inputs']}")
    lines.append(f"feature map (Hf, Wf): {tuple(info['feature_map'])}")
    if "neuron" in info:
        n = info["neuron"]
        lines.append(
            f"neuron: {n['kind']} (D={n['levels']}, tau={n['tau']}, threshold={n['v_threshold']}, "
            f"surrogate {n['surrogate']}, backend {n['backend']}, CPU implementation {n['implementation_cpu']})"
        )
        retrieval = f"; memory retrieval after blocks {info['memory_points']}" if info["memory_points"] else ""
        lines.append(f"T x D: {info['T_x_D']}{retrieval}")
    if "macs" in info:
        lines.append("dense MACs (batch 1):")
        for k, v in info["macs"].items():
            lines.append(f"  {k:<22} {_fmt(v)}")
    return "\n".join(lines)


def add_arguments_model(parser: argparse.ArgumentParser) -> None:
    """`spiketrack model summary CONFIG [--json] [--set KEY=VALUE ...] [--no-macs]`."""
    sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    p = sub.add_parser("summary", help="parameters per component, input shapes, neuron, T x D, dense MACs")
    p.add_argument("config", help="experiment YAML (e.g. configs/student_tiny.yaml)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    p.add_argument("--no-macs", action="store_true", help="skip the MAC count (faster)")


def run_model(args: argparse.Namespace) -> int:
    """Run `spiketrack model ...`; returns the exit code."""
    if getattr(args, "model_command", None) != "summary":
        print("usage: spiketrack model summary CONFIG [--json] [--set KEY=VALUE ...]")
        return 2
    cfg = load_config(args.config, args.set)
    info = model_summary(cfg, macs=not args.no_macs)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


__all__ = ["add_arguments_model", "format_summary", "model_summary", "run_model", "student_inputs", "teacher_inputs"]
