"""Low-rank adapters (LoRA, Hu et al., ICLR 2022) on a model's linear layers, added and removed in place.

``add_lora(model, names, rank, alpha)`` wraps each named ``nn.Linear`` in a :class:`LoRALinear` (the same base
layer object, plus A [r, in] and B [out, r]; B starts at zero, so outputs are unchanged until B is trained) and
``remove_lora(model)`` puts the base layers back, leaving the model exactly as before. After tuning,
``merge_lora(model)`` folds each adapter into its base weight (W <- W + (alpha/r) B A, Hu et al. 2022, §4.1) and
removes the wrappers, so later calls cost exactly the untuned model's operations; it returns the original weights,
which ``restore_weights`` copies back bit for bit. Used by test-time tuning (:mod:`spiketrack.tracking.ttt`); works
on the teacher (timm ``Attention.qkv``, ``.proj``, ``Mlp.fc1``, ``.fc2``) and the student (the ``nn.Linear``
inside each ``SeqLinearBN``).

The adapter is two modules (``lora_a``, ``lora_b``) so the energy counter sees them as linear layers: A takes the
layer's input (spikes in the student: synaptic operations), B takes A's analog output (MACs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
from torch import nn

# timm ViT (attn.qkv, attn.proj, mlp.fc1, mlp.fc2) and the student's spiking blocks (attn.q/k/v/proj.linear,
# mlp.fc1/fc2.linear): HDETrack V2 (Wang et al., arXiv:2502.05574, §3.4) tunes the MLP, attention projection and qkv.
DEFAULT_TARGETS = ("qkv", "q", "k", "v", "proj", "fc1", "fc2")


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(x))``: x [..., in] -> [..., out]; ``base`` is the wrapped layer, unchanged."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        self.rank = int(rank)
        self.scaling = float(alpha) / self.rank
        dev, dtype = base.weight.device, base.weight.dtype
        self.lora_a = nn.Linear(base.in_features, self.rank, bias=False, device=dev, dtype=dtype)
        self.lora_b = nn.Linear(self.rank, base.out_features, bias=False, device=dev, dtype=dtype)
        nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))  # as Hu et al.'s reference code
        nn.init.zeros_(self.lora_b.weight)  # B = 0: the adapted layer starts as the base layer

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., out]."""
        return self.base(x) + self.lora_b(self.lora_a(x)) * self.scaling


def target_names(model: nn.Module, targets: Iterable[str] = DEFAULT_TARGETS) -> list[str]:
    """Qualified names of the ``nn.Linear`` layers of attention and MLP blocks whose own name is in ``targets``
    (``...attn.qkv``, ``...mlp.fc1``, and the student's ``...attn.q.linear``); other linears are left alone."""
    alts = "|".join(re.escape(t) for t in targets)
    pattern = re.compile(rf"(^|\.)(attn|mlp)\.({alts})(\.linear)?$")
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and pattern.search(n)]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def add_lora(model: nn.Module, names: Iterable[str], rank: int, alpha: float) -> list[LoRALinear]:
    """Wrap each named linear of ``model`` in a :class:`LoRALinear` (in place); returns the adapters."""
    adapters = []
    for name in names:
        base = model.get_submodule(name)
        if isinstance(base, LoRALinear):
            raise ValueError(f"{name} already has a LoRA adapter")
        adapter = LoRALinear(base, rank, alpha)
        _set(model, name, adapter)
        adapters.append(adapter)
    return adapters


def remove_lora(model: nn.Module) -> int:
    """Put every wrapped base layer back (the model is as before :func:`add_lora`); returns how many."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        _set(model, name, model.get_submodule(name).base)
    return len(names)


@torch.no_grad()
def merge_lora(model: nn.Module) -> dict[str, torch.Tensor]:
    """Fold every adapter into its base layer (W <- W + scaling * B A) and put the base layers back in place of
    the wrappers; returns a copy of each changed base weight, by layer name, for :func:`restore_weights`."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    saved: dict[str, torch.Tensor] = {}
    for name in names:
        adapter = model.get_submodule(name)
        base = adapter.base
        saved[name] = base.weight.detach().clone()
        delta = adapter.lora_b.weight @ adapter.lora_a.weight  # [out, r] @ [r, in] -> [out, in]
        base.weight.add_(delta.to(base.weight.dtype), alpha=adapter.scaling)
        _set(model, name, base)
    return saved


@torch.no_grad()
def restore_weights(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Copy the weights :func:`merge_lora` returned back into their layers (bit for bit)."""
    for name, weight in saved.items():
        model.get_submodule(name).weight.copy_(weight)


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter parameters (A and B of every :class:`LoRALinear`) of ``model``."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_a.weight, m.lora_b.weight)]


__all__ = [
    "DEFAULT_TARGETS",
    "LoRALinear",
    "add_lora",
    "lora_parameters",
    "merge_lora",
    "remove_lora",
    "restore_weights",
    "target_names",
]
