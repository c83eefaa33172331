"""Optimiser and learning-rate schedule: AdamW with backbone / new-module groups, warmup + cosine or step.

Backbone parameters (those a pretrained ViT provides: ``model.backbone_keys()`` when the model defines it,
else names under ``backbone.``) train at ``lr * backbone_lr_scale``; the heads, fusion layers, memory
modules and the distillation projections ("new modules") at ``lr``, as OSTrack fine-tunes its MAE
backbone at a tenth of the head's rate. Biases and normalisation weights (1-D tensors) get no weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from spiketrack.config import TrainConfig


def backbone_names(model: nn.Module) -> set[str]:
    """Names of the model's backbone parameters."""
    keys = getattr(model, "backbone_keys", None)
    if callable(keys):
        return set(keys())
    return {n for n, _ in model.named_parameters() if n.startswith("backbone.")}


def param_groups(model: nn.Module, extra: list[nn.Module], cfg: TrainConfig) -> list[dict]:
    """AdamW groups: (backbone | new) x (decay | no decay); empty groups are dropped."""
    backbone = backbone_names(model)
    groups = {
        ("backbone", True): [],
        ("backbone", False): [],
        ("new", True): [],
        ("new", False): [],
    }
    named = [(n, p) for n, p in model.named_parameters()]
    named += [(f"extra{i}.{n}", p) for i, m in enumerate(extra) for n, p in m.named_parameters()]
    for name, p in named:
        if not p.requires_grad:
            continue
        part = "backbone" if name in backbone else "new"
        groups[(part, p.ndim > 1)].append(p)
    out = []
    for (part, decay), params in groups.items():
        if params:
            scale = cfg.backbone_lr_scale if part == "backbone" else 1.0
            out.append(
                {
                    "params": params,
                    "lr": cfg.lr * scale,
                    "weight_decay": cfg.weight_decay if decay else 0.0,
                    "name": f"{part}{'' if decay else '_no_decay'}",
                }
            )
    return out


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base lr after ``step`` optimiser steps: linear warmup, then cosine to 0 or steps."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    milestones = sorted(int(e * steps_per_epoch) for e in cfg.step_epochs)

    def fn(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            span = max(total_steps - warmup, 1)
            progress = min(max(step - warmup, 0) / span, 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return cfg.step_gamma ** sum(step >= m for m in milestones)

    return fn


def build_optimizer(
    model: nn.Module, extra: list[nn.Module], cfg: TrainConfig, steps_per_epoch: int, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`param_groups` and its per-step LambdaLR schedule."""
    optimizer = torch.optim.AdamW(param_groups(model, extra, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps_per_epoch, total_steps))
    return optimizer, scheduler


__all__ = ["backbone_names", "build_optimizer", "lr_lambda", "param_groups"]
