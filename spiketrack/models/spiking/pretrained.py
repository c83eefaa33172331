"""``model.pretrained`` for the student: start from local weights (never downloaded).

Accepted files (``torch.load``, ``weights_only=True``: no code runs):

- a spiketrack checkpoint (``format='spiketrack-checkpoint'``, e.g. a trained or distilled student): its ``model``
  state dict; a checkpoint of another kind (a teacher) is refused;
- a plain state dict of the student (name -> tensor), or one under ``'model'`` / ``'state_dict'``; a DDP
  ``module.`` prefix is dropped.

Keys are the student's own names (no foreign key map: SDTrack / Spike-driven Transformer V3 checkpoints name
other modules with other shapes — their stems, attention and neuron layouts differ from this MetaFormer — so a
name map would fit almost nothing; convert such weights to this naming first). Loading is partial and said out
loud: the :class:`StudentLoadReport` lists loaded, missing (left at their initialisation) and unexpected
(unused) keys; it is logged and kept as ``model.pretrained_report``. A tensor whose shape differs, a file that
fits no key at all, or a missing file is a :class:`~spiketrack.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spiketrack.errors import CheckpointError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spiketrack-checkpoint"  # the field models/checkpoint.py writes and checks


@dataclass
class StudentLoadReport:
    """What loading ``model.pretrained`` into the student did."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # student keys the file did not provide (kept at init)
    unexpected: list[str] = field(default_factory=list)  # file keys with no place in the student (unused)

    def summary(self, shown: int = 8) -> str:
        def listed(keys: list[str]) -> str:
            if not keys:
                return "none"
            more = f" ... (+{len(keys) - shown})" if len(keys) > shown else ""
            return ", ".join(keys[:shown]) + more

        return (
            f"{self.path}: loaded {len(self.loaded)} tensors; missing {len(self.missing)} ({listed(self.missing)}); "
            f"unexpected {len(self.unexpected)} ({listed(self.unexpected)})"
        )


def read_student_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The student state dict stored in ``path`` (see the module docstring); CheckpointError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"pretrained weights not found: {p} (key 'model.pretrained'; weights are never downloaded)")
    try:
        raw: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a checkpoint error
        raise CheckpointError(f"{p}: cannot read a torch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(raw, dict) and raw.get("format") == CHECKPOINT_FORMAT:
        if raw.get("kind") not in (None, "student"):
            raise CheckpointError(f"{p} [kind]: a {raw.get('kind')!r} checkpoint cannot initialise the student")
        raw = raw.get("model")
    for key in ("model", "state_dict"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise CheckpointError(f"{p}: expected a state dict (name -> tensor), a spiketrack checkpoint, or one under 'model'")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in raw.items()}


def load_student_weights(model: nn.Module, path: str | Path) -> StudentLoadReport:
    """Load ``path`` into ``model`` (partial: missing keys keep their initialisation); returns and logs the report."""
    source = read_student_state(path)
    own = model.state_dict()
    report = StudentLoadReport(path=str(path))
    target: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{path} [{key}]: shape {tuple(value.shape)}, the student expects {tuple(own[key].shape)} "
                "(is model.variant / model.overrides that of the weights?)"
            )
        target[key] = value
    if not target:
        raise CheckpointError(
            f"{path}: no key fits the student (first keys: {sorted(source)[:3]}); expected the student's own names"
        )
    model.load_state_dict(target, strict=False)
    report.loaded = sorted(target)
    report.missing = sorted(k for k in own if k not in target)
    (log.warning if report.missing or report.unexpected else log.info)("model.pretrained %s", report.summary())
    return report


__all__ = ["StudentLoadReport", "load_student_weights", "read_student_state"]
