"""Reading torch files (checkpoints, pretrained weights) safely, with our own error messages.

Files are loaded with ``weights_only=True``: only tensors and plain Python data are unpickled, so no code from
the file runs. When PyTorch refuses a file, its message suggests re-running with ``weights_only=False``, which
would execute whatever the file names; that advice (and its ANSI colour codes) never reaches the user. The
error names the file, says what is wrong and, for a file that holds more than tensors and plain data, that it
was refused for safety.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from spiketrack.errors import CheckpointError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_OPERAND = re.compile(r"Unsupported operand (\d+)")


def _short(text: str) -> str:
    """First line of an exception text, without ANSI codes."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _is_zip(path: str | Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def load_error(path: str | Path, what: str, exc: BaseException) -> CheckpointError:
    """Our :class:`CheckpointError` for ``torch.load`` failing on ``path`` with ``exc``."""
    text = _ANSI.sub("", str(exc))
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Weights only load failed" in text:
        found = _GLOBAL.search(text) or _OPERAND.search(text)
        detail = ""
        if found is not None and found.re is _GLOBAL:
            detail = f" (it names the Python object {found.group(1)})"
        elif not _is_zip(path):  # no torch archive, and not a pickle the safe loader knows: bytes of something else
            return CheckpointError(f"{path}: not a {what} (neither a torch zip archive nor a pickle of tensors)")
        elif found is not None:
            detail = f" (pickle instruction {found.group(1)})"
        return CheckpointError(
            f"{path}: {what} refused for safety: the file holds more than tensors and plain data{detail}, and "
            "loading it would run code from the file; use a file written by spiketrack or a plain state dict"
        )
    if isinstance(exc, (EOFError, zipfile.BadZipFile)) or "PytorchStreamReader" in text or "central directory" in text:
        return CheckpointError(f"{path}: {what} is damaged or truncated (not a complete torch file)")
    if not _is_zip(path):
        return CheckpointError(f"{path}: not a {what} (neither a torch zip archive nor a pickle of tensors)")
    return CheckpointError(f"{path}: not a readable {what} ({type(exc).__name__}: {_short(text)})")


def load_torch_file(path: str | Path, what: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is a :class:`CheckpointError` from :func:`load_error`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says what matters
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a file we do not load
        raise load_error(path, what, exc) from None


__all__ = ["load_error", "load_torch_file"]
