"""The torch device a command runs on, checked once for every command (``--device``)."""

from __future__ import annotations

import torch

from spiketrack.errors import ConfigError


def resolve_device(device: str | None) -> str:
    """'cuda' only where available; None picks cuda when present, else cpu."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device {device}: expected cpu or cuda[:N]")
    return device


__all__ = ["resolve_device"]
