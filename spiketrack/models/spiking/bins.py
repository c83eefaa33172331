"""Event-bin inputs and time-averaged token views, shared by the spiking student families."""

from __future__ import annotations

import torch


def check_event_bins(bins: torch.Tensor, name: str) -> None:
    """Refuse anything but event bins [T, B, 2, H, W] (2 polarities), naming the argument."""
    if bins.dim() != 5 or bins.shape[2] != 2:
        raise ValueError(f"{name}: expected event bins [T, B, 2, H, W], got shape {tuple(bins.shape)}")


def time_mean_tokens(x: torch.Tensor) -> torch.Tensor:
    """[T, B, C, h, w] feature maps -> tokens averaged over T [B, h*w, C] (what distillation compares)."""
    return x.mean(dim=0).flatten(2).transpose(1, 2)


__all__ = ["check_event_bins", "time_mean_tokens"]
