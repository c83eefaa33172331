"""Readers of the plain-text files evaluation consumes: box lists, per-frame times, flag lists.

Box files hold one ``x,y,w,h`` row per line, fields separated by commas, spaces or tabs (mixed is fine),
integers or floats; ``nan`` is read as NaN so the protocol can decide about it. Trailing blank lines
are ignored. Anything else (a blank line inside, a field that is not a number, a row with a number of
fields other than 4) raises :class:`~spiketrack.errors.DataFormatError` naming the file and the line.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from spiketrack.errors import DataFormatError


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise DataFormatError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataFormatError(path, None, "not a text file") from None


def _parse_rows(path: Path, columns: int, what: str) -> np.ndarray:
    """Parse the file into a float64 [N, columns] array; errors name the first bad line (1-based).

    Fast path: numpy's C parser on the whole text; only when it fails (or skipped a blank line)
    are lines inspected one by one to say which line is wrong and why.
    """
    body = _text(path).rstrip()
    if not body:
        return np.zeros((0, columns), dtype=np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(io.StringIO(body.replace(",", " ")), dtype=np.float64, ndmin=2, comments=None)
        # loadtxt skips blank lines: a row count below the line count means one sat inside
        if arr.shape[1] == columns and len(arr) == body.count("\n") + 1:
            return arr
    except ValueError:
        pass  # find the offending line below
    lines = body.splitlines()
    for i, line in enumerate(lines, start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            raise DataFormatError(path, f"line {i}", f"empty line; expected {what}")
        if len(fields) != columns:
            raise DataFormatError(path, f"line {i}", f"{len(fields)} fields {line.strip()!r}; expected {what}")
        for value in fields:
            try:
                float(value)
            except ValueError:
                raise DataFormatError(
                    path, f"line {i}", f"not a number: {value!r} in {line.strip()!r}; expected {what}"
                ) from None
    raise DataFormatError(path, None, f"could not parse {what} rows")  # pragma: no cover - defensive


def read_boxes(path: str | Path) -> np.ndarray:
    """Boxes [N, 4] float64 (x, y, w, h per line) from a result or ground-truth file."""
    path = Path(path)
    return _parse_rows(path, 4, "4 numbers x,y,w,h")


def read_times(path: str | Path) -> np.ndarray:
    """Per-frame processing times in seconds [N] (one number per line; finite and >= 0)."""
    path = Path(path)
    times = _parse_rows(path, 1, "one time in seconds").reshape(-1)
    bad = np.flatnonzero(~np.isfinite(times) | (times < 0))
    if bad.size:
        raise DataFormatError(path, f"line {bad[0] + 1}", f"time {times[bad[0]]!r} is not a finite number >= 0")
    return times


def read_flags(path: str | Path) -> np.ndarray:
    """0/1 flags [N] as bool (one per line, e.g. EventVOT's ``absent.txt``); other values are errors."""
    path = Path(path)
    values = _parse_rows(path, 1, "a 0/1 flag").reshape(-1)
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        raise DataFormatError(path, f"line {bad[0] + 1}", f"flag {values[bad[0]]!r} is not 0 or 1")
    return values.astype(bool)
