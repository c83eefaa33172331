"""Reading checkpoints and rebuilding their model from the config stored inside (pytracking's model constructor).

A checkpoint is a ``torch.save`` dict with ``format='spiketrack-checkpoint'``, ``version``, ``kind``
('teacher' | 'student'), ``config`` (the plain-data experiment config), ``model`` (state dict) and, for
resuming training, the fields :mod:`spiketrack.train.checkpoint` writes. Only tensors and plain Python data
are stored, so files load with ``weights_only=True`` (no code runs when a checkpoint is read).

This is the model side of checkpoints: whoever needs a trained network (tracking, energy, tools) loads it
here without importing training code. Writing checkpoints and resuming training live in ``train/``.
"""

from __future__ import annotations

import dataclasses
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spiketrack.config import ExperimentConfig, from_dict, load_config, to_dict, upgrade_stored_config
from spiketrack.errors import CheckpointError, ConfigError
from spiketrack.models import build_model
from spiketrack.models.torch_files import load_torch_file

CHECKPOINT_FORMAT = "spiketrack-checkpoint"
CHECKPOINT_VERSION = 1


def _check_zip_crc(path: Path) -> None:
    """A torch zip checkpoint whose stored CRCs do not match (flipped bytes) is refused before it is loaded:
    ``torch.load`` does not check them and would return corrupted weights."""
    try:
        if not zipfile.is_zipfile(path):
            return  # legacy (non-zip) torch files: torch.load decides
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged zip archive: {exc})") from None
    if bad is not None:
        raise CheckpointError(f"{path} [{bad}]: checksum mismatch, the checkpoint file is damaged")


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict of ``path``; :class:`CheckpointError` naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    _check_zip_crc(path)
    state = load_torch_file(path, "checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a spiketrack checkpoint (field 'format' != '{CHECKPOINT_FORMAT}')")
    if int(state.get("version", -1)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')} is newer than this spiketrack")
    for key in ("config", "model"):
        if key not in state:
            raise CheckpointError(f"{path}: field '{key}' missing")
    return state


def checkpoint_config(state: dict[str, Any], path: str | Path = "<checkpoint>") -> ExperimentConfig:
    """The experiment config stored in a checkpoint."""
    config = state["config"]
    if isinstance(config, dict):  # written by an earlier spiketrack: today's layout (moved keys)
        config = upgrade_stored_config(config)
    try:
        return from_dict(ExperimentConfig, config, source=f"{path} [config]")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: stored config does not fit this spiketrack: {exc}") from exc


def config_of_checkpoint(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """The config a checkpoint was trained with, with ``--set`` ``overrides`` applied (a checkpoint alone rebuilds
    its model: commands take ``--config`` only to change what the checkpoint says)."""
    stored = checkpoint_config(read_checkpoint(path), path)
    return load_config(None, overrides, base=to_dict(stored))


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path, field: str = "model") -> None:
    """``model.load_state_dict`` with a :class:`CheckpointError` naming the file and the first bad keys."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f"{path} [{field}]: does not fit the model: {' '.join(first)}") from exc


def _without_pretrained(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with ``model.pretrained`` cleared: a model rebuilt for a checkpoint's weights does not need (or
    read) the file it started training from, which may be gone on the machine that tracks."""
    if not cfg.model.pretrained:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=None))


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    build: Callable[[ExperimentConfig], nn.Module] | None = None,
) -> tuple[nn.Module, ExperimentConfig]:
    """Model (eval mode, on ``device``) and config of a checkpoint, the model rebuilt from its stored config.

    ``build`` makes the model from the config (default: :func:`spiketrack.models.build_model`).
    """
    state = read_checkpoint(path)
    cfg = checkpoint_config(state, path)
    model = (build or build_model)(_without_pretrained(cfg))
    load_state(model, state["model"], path)
    return model.to(device).eval(), cfg


# Model settings that do not change what a trained network computes in a forward pass: the weights file it
# started from, the neuron kernel backend and the surrogate gradient (backward only).
_FORWARD_NEUTRAL = {"pretrained", "neuron.backend", "neuron.surrogate", "neuron.surrogate_alpha", "neuron.detach_reset"}


def model_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """``cfg.model`` as flat dotted keys (``neuron.levels``), without the settings in ``_FORWARD_NEUTRAL``
    (``template_timesteps`` equal to ``timesteps`` reads as its default, None)."""

    def flat(data: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict) and key != "overrides":
                out.update(flat(value, f"{prefix}{key}."))
            elif f"{prefix}{key}" not in _FORWARD_NEUTRAL:
                out[f"{prefix}{key}"] = value
        return out

    out = flat(to_dict(cfg.model), "")
    if out.get("template_timesteps") == out.get("timesteps"):
        out["template_timesteps"] = None  # T_t = T is the default (None): the same network
    return out


def check_model_config(cfg: ExperimentConfig, stored: ExperimentConfig, path: str | Path) -> None:
    """:class:`CheckpointError` when ``cfg.model`` describes another network than the one ``path`` was trained as.

    Weights can fit a model and still mean something else (e.g. ``model.neuron.levels`` 4 instead of 8:
    same tensors, different spikes), so the settings are compared, not only the state-dict keys.
    """
    mine, theirs = model_settings(cfg), model_settings(stored)
    diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    if diff:
        listed = ", ".join(f"model.{k}: config {mine.get(k)!r}, checkpoint {theirs.get(k)!r}" for k in diff)
        raise CheckpointError(
            f"{path}: the config describes another model than the checkpoint was trained as ({listed}); "
            "use the training config (its run folder has config.yaml) or --set these keys"
        )


def load_checkpoint_as(
    cfg: ExperimentConfig,
    path: str | Path,
    device: str | torch.device = "cpu",
    build: Callable[[ExperimentConfig], nn.Module] | None = None,
) -> nn.Module:
    """Model of ``cfg`` (eval mode, on ``device``) with the weights of ``path``, after :func:`check_model_config`."""
    build = build or build_model

    def build_checked(stored: ExperimentConfig) -> nn.Module:
        check_model_config(cfg, stored, path)
        return build(_without_pretrained(cfg))

    model, _ = load_checkpoint(path, device=device, build=build_checked)
    return model


def load_model(cfg: ExperimentConfig, checkpoint: str | Path, device: str = "cpu") -> nn.Module:
    """Model of ``cfg.model`` (the command's config decides the architecture) with the weights of ``checkpoint``.

    CheckpointError (naming the file) when it is missing, unreadable, was trained as another model than
    ``cfg.model`` describes, or does not fit that model.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return load_checkpoint_as(cfg, path, device=device)


__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "check_model_config",
    "checkpoint_config",
    "config_of_checkpoint",
    "load_checkpoint",
    "load_checkpoint_as",
    "load_model",
    "load_state",
    "model_settings",
    "read_checkpoint",
]
