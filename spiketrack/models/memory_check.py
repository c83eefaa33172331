"""Refuse model sizes that cannot fit in memory, before anything is allocated.

A config such as ``model.template_timesteps=10000`` or ``data.search_size=500000`` is valid by type and range, but
its first forward pass (or its positional embeddings) would need more memory than the machine has: the run
would end in an allocator error, or swap for minutes, instead of a refusal. :func:`check_memory` estimates the
need and compares it with the memory available (``/proc/meminfo`` MemAvailable and the process's address-space
limit; on CUDA the device's free memory):

- the model is built and run once on PyTorch's ``meta`` device (shapes only, no storage), at batch 1; the
  parameters and the output of every leaf module are summed. Inference needs at least the parameters and the
  largest layer output; a training step at least the parameters x 4 (weights, gradients, two Adam moments) and
  every layer output (autograd keeps them for the backward pass), scaled by the batch.
- the trace runs only when the inputs alone exceed 1/10000 of the available memory (the models here keep at most
  a few hundred bytes of activations per input byte), so ordinary configs cost nothing; a trace that fails (a
  size that overflows even PyTorch's shape arithmetic) falls back to the inputs' own size as the estimate.
"""

from __future__ import annotations

import dataclasses
import os
import random
import resource
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spiketrack.errors import ConfigError

TRACE_RATIO = 10_000  # trace when inputs x this exceed the available memory (see the module docstring)
_GIB = 2**30


def available_memory(device: str | torch.device = "cpu") -> int:
    """Bytes this process can still allocate on ``device`` (CPU: MemAvailable, capped by RLIMIT_AS)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    avail = None
    try:
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 62  # unknown: never refuse on this account
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = 0
        try:
            for line in open("/proc/self/status", encoding="ascii"):
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
        except OSError:
            pass
        avail = min(avail, max(0, soft - used))
    return int(avail)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one model at batch 1: parameters, inputs, every leaf module's output (sum and largest)."""

    params: int
    inputs: int
    activations: int  # sum of the leaf modules' outputs
    largest: int  # largest single leaf output
    traced: bool  # False: the trace failed or was skipped, ``activations`` = ``largest`` = inputs

    def need(self, batch: int, training: bool) -> int:
        if training:
            return 4 * self.params + batch * (self.inputs + self.activations)
        return self.params + batch * (self.inputs + self.largest)


def _input_shapes(cfg: Any) -> dict[str, tuple[int, ...]]:
    from spiketrack.models import input_spec

    spec = input_spec(cfg)
    zs, xs = cfg.data.template_size, cfg.data.search_size
    if spec.timesteps:
        tt = spec.template_timesteps or spec.timesteps
        return {"template": (tt, 1, 2, zs, zs), "search": (spec.timesteps, 1, 2, xs, xs)}
    shapes = {}
    for view, ch in spec.channels.items():
        shapes[f"template/{view}"] = (1, ch, zs, zs)
        shapes[f"search/{view}"] = (1, ch, xs, xs)
    return shapes


def _nbytes(obj: Any) -> tuple[int, int]:
    """(sum, largest) bytes of the tensors in a module output (tensors, lists, tuples, dicts)."""
    if isinstance(obj, torch.Tensor):
        n = obj.numel() * obj.element_size()
        return n, n
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    total = largest = 0
    for item in items:
        s, m = _nbytes(item)
        total, largest = total + s, max(largest, m)
    return total, largest


def _trace(cfg: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[int, int, int]:
    """(parameter bytes, sum of leaf outputs, largest leaf output) of one forward pass on the meta device."""
    from spiketrack.models import _family

    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=None))  # no weights file read
    total = [0, 0]

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        s, m = _nbytes(output)
        total[0] += s
        total[1] = max(total[1], m)

    with torch.device("meta"):
        model = _family(cfg).build(cfg)
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        for module in model.modules():
            if not any(True for _ in module.children()):
                module.register_forward_hook(hook)
        meta = {k: torch.empty(s) for k, s in shapes.items()}
        if "template" in meta:
            template, search = meta["template"], meta["search"]
        else:
            template = {k.split("/", 1)[1]: v for k, v in meta.items() if k.startswith("template/")}
            search = {k.split("/", 1)[1]: v for k, v in meta.items() if k.startswith("search/")}
        with torch.no_grad():
            model(template, search)
    return params, total[0], total[1]


def estimate_memory(cfg: Any, force: bool = False, available: int | None = None) -> MemoryEstimate:
    """The model's :class:`MemoryEstimate` at batch 1; traced only when worth it (see the module docstring)."""
    shapes = _input_shapes(cfg)
    inputs = sum(4 * int(np.prod(s, dtype=object)) for s in shapes.values())
    if not force and inputs * TRACE_RATIO <= (available if available is not None else available_memory()):
        return MemoryEstimate(0, inputs, inputs, inputs, traced=False)
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        params, acts, largest = _trace(cfg, shapes)
        return MemoryEstimate(params, inputs, acts, largest, traced=True)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - shapes too large for PyTorch's own arithmetic: the inputs are the estimate
        return MemoryEstimate(0, inputs, inputs, inputs, traced=False)
    finally:  # building the model must not move the seeded random streams of the real build
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _sizes(cfg: Any) -> str:
    parts = [f"data.template_size={cfg.data.template_size}", f"data.search_size={cfg.data.search_size}"]
    if cfg.model.kind == "student":
        parts = [f"model.timesteps={cfg.model.timesteps}",
                 f"model.template_timesteps={cfg.model.template_timesteps or cfg.model.timesteps}", *parts]
    return ", ".join(parts)


def check_memory(cfg: Any, batch: int = 1, training: bool = False, device: str | torch.device = "cpu") -> None:
    """:class:`ConfigError` (with the estimate) when the model of ``cfg`` cannot fit in ``device``'s free memory:
    at ``batch`` for one forward pass, or for one training step when ``training``."""
    available = available_memory(device)
    est = estimate_memory(cfg, available=max(1, available // max(1, batch)))
    need = est.need(batch, training)
    if need <= available:
        return
    what = f"one training step at batch {batch}" if training else f"one forward pass at batch {batch}"
    if est.traced:
        parts = (f"parameters{' with gradients and optimiser state' if training else ''} "
                 f"{(4 if training else 1) * est.params / _GIB:.2f} GiB + "
                 f"{'layer outputs' if training else 'its largest layer output and the inputs'} "
                 f"{need / _GIB - (4 if training else 1) * est.params / _GIB:.2f} GiB, traced on PyTorch's meta device")
    else:
        parts = "the input tensors alone"
    raise ConfigError(
        f"{_sizes(cfg)}: the {cfg.model.kind} model needs at least {need / _GIB:,.1f} GiB for {what} ({parts}), "
        f"more than the {available / _GIB:,.1f} GiB of memory available on {torch.device(device).type}; "
        "lower these sizes" + (" or train.batch_size" if training else "")
    )


__all__ = ["MemoryEstimate", "available_memory", "check_memory", "estimate_memory"]
