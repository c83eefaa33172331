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
UNREADABLE_SUFFIX = ".unreadable"  # a step file that did not read back when a run resumed, set aside


class _WriteRecorder:
    """File object for ``torch.save`` that remembers the OS error of a failed write: PyTorch's zip writer turns it
    into ``RuntimeError('... inline_container.cc ... unexpected pos ...')``, which says nothing of a full disk."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file + fsync + rename.

    A failed write (disk full, ...) removes the temporary file and raises the ``OSError`` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    recorder = None
    try:
        with open(tmp, "wb") as fh:
            recorder = _WriteRecorder(fh)
            torch.save(obj, recorder)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        error = recorder.error if recorder is not None and recorder.error is not None else exc
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, error.strerror or os.strerror(error.errno), str(path)) from None  # name it
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
        """Write ``ckpt-<step>.pt`` (and ``best.pt``), then delete the oldest step files beyond the last k.

        Every step file here is loadable (written whole by :func:`atomic_save`; one that did not read back when
        the run resumed was set aside by :meth:`latest`), so the k kept are the newest loadable checkpoints.
        """
        state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
        path = atomic_save(state, self.dir / f"ckpt-{step:08d}.pt")
        if best:
            atomic_save(state, self.best_path)
        for old in self.step_files()[: -self.keep_last]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """Newest step checkpoint that reads back (a broken newest file falls back to the previous one).

        An unreadable step file (damaged, cut short, or holding more than tensors and data) is renamed to
        ``<name>.unreadable``: it is kept for inspection, but no longer counts as one of the last k checkpoints,
        which would otherwise delete the good older ones at the next save.
        """
        for path in reversed(self.step_files()):
            try:
                return path, read_checkpoint(path)
            except CheckpointError as exc:
                aside = path.with_name(path.name + UNREADABLE_SUFFIX)
                try:
                    os.replace(path, aside)
                except OSError:
                    aside = path
                message = (f"skipping unreadable checkpoint {path} ({exc}); kept as {aside.name}, not counted among "
                           "the last checkpoints; resuming from an older one")
                warnings.warn(message, stacklevel=2)
                print(f"warning: {message}", file=sys.stderr)
                continue
        return None


__all__ = ["CheckpointManager", "atomic_save"]
