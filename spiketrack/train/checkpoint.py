"""Checkpoint files of a training run: atomic writes, keep-last-k + best, the newest readable one for resuming.

A checkpoint is a ``torch.save`` dict with ``format='spiketrack-checkpoint'``, ``version``, ``kind``
('teacher' | 'student'), ``config`` (the plain-data experiment config), ``model`` (state dict) and, for
resuming, ``optimizer``, ``scheduler``, ``scaler``, ``align`` (distillation projections), ``epoch``,
``step``, ``step_in_epoch``, ``rng`` and ``metrics``. Only tensors and plain Python data are stored, so
files load with ``weights_only=True`` (no code runs when a checkpoint is read).

Writes go to a temporary file in the same folder, are flushed to disk and then renamed over the final
name (``os.replace`` is atomic on POSIX), so a run killed while writing leaves the previous checkpoint
intact and never a half-written file under a checkpoint name.

Reading a checkpoint and rebuilding its model is the model side's job (:mod:`spiketrack.models.checkpoint`,
so tracking and energy never import training code); this module writes and finds the files a run resumes from.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from spiketrack.errors import CheckpointError
from spiketrack.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, read_checkpoint

_STEP_FILE = re.compile(r"^ckpt-(\d+)\.pt$")


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from None  # name the file
        raise
    return path


def _step_of(path: Path) -> int:
    m = _STEP_FILE.match(path.name)
    return int(m.group(1)) if m else -1


class CheckpointManager:
    """Checkpoints of one run folder: ``checkpoints/ckpt-<step>.pt`` (last k kept) and ``best.pt``."""

    def __init__(self, run_dir: str | Path, keep_last: int = 2) -> None:
        self.dir = Path(run_dir) / "checkpoints"
        self.keep_last = max(1, int(keep_last))

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def step_files(self) -> list[Path]:
        """Step checkpoints, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted((p for p in self.dir.glob("ckpt-*.pt") if _step_of(p) >= 0), key=_step_of)

    def save(self, state: dict[str, Any], step: int, best: bool = False) -> Path:
        """Write ``ckpt-<step>.pt`` (and ``best.pt``), then delete step files beyond the last k."""
        state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
        path = atomic_save(state, self.dir / f"ckpt-{step:08d}.pt")
        if best:
            atomic_save(state, self.best_path)
        for old in self.step_files()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """Newest step checkpoint that reads back (a broken newest file falls back to the previous one)."""
        for path in reversed(self.step_files()):
            try:
                return path, read_checkpoint(path)
            except CheckpointError as exc:
                warnings.warn(f"skipping unreadable checkpoint {path} ({exc}); resuming from an older one",
                              stacklevel=2)
                print(f"warning: skipping unreadable checkpoint {path}: {exc}", file=sys.stderr)
                continue
        return None


__all__ = ["CheckpointManager", "atomic_save"]
