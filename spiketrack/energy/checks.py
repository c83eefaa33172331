"""Energy JSON values are operation counts, energies and rates: finite and never negative.

A file with ``-1`` or NaN placeholders (a failed or hand-edited count) would otherwise enter a report as a
real measurement; :func:`check_energy_values` refuses it, naming the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from spiketrack.errors import DataFormatError


def _first_bad(value: Any, where: str) -> tuple[str, Any] | None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, (int, float)):
        return None if math.isfinite(value) and value >= 0 else (where, value)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_bad(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_bad(item, f"{where}[{i}]")
            if found:
                return found
    return None


def check_energy_values(path: str | Path, data: dict[str, Any]) -> None:
    """DataFormatError naming ``path`` and the field of the first negative or non-finite number in ``data``."""
    found = _first_bad(data, "")
    if found:
        field, value = found
        raise DataFormatError(path, field, f"{value!r} is not a count or energy (expected a finite number >= 0)")


__all__ = ["check_energy_values"]
