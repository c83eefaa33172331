"""Prophesee event files: ``.raw`` (EVT 2.0 / EVT 3.0 encodings) and ``.dat`` (fixed 8-byte records).

No decoder is written here; two maintained PyPI packages are used, both optional extras because they ship
compiled code:

- ``expelliarmus`` (open-neuromorphic, numpy-only dependency; ``pip install 'spiketrack[prophesee]'``) for
  DAT and EVT2 — checked against files encoded by hand from Prophesee's format descriptions;
- ``evlib`` (>= 0.13, Rust; pulls polars/pyarrow; ``pip install 'spiketrack[prophesee-evt3]'``) for EVT3.
  expelliarmus 1.1.12 is *not* used for EVT3: on a stream encoded per Prophesee's EVT 3.0 description it adds
  4096 µs at every TIME_HIGH change (it counts a TIME_LOW wrap on top of the TIME_HIGH step), e.g. events at
  500, 1500, ..., 4500 µs decode as 500, 1500, 2500, 3500, 8596 µs. evlib 0.13.2 decodes the same stream exactly.

Missing packages raise a :class:`DataFormatError` that says what to install. The sensor size comes from the
file's ``%`` header: ``% geometry WxH`` or ``% format EVT3;height=H;width=W`` in RAW files, ``% Width W`` /
``% Height H`` in DAT files (docs.prophesee.ai, "RAW File Format" and "DAT File Format"); the encoding of a
``.raw`` file from ``% evt 2.0|3.0`` or ``% format EVT2|EVT3``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError

INSTALL_HINT = {
    "dat": "pip install 'spiketrack[prophesee]' (expelliarmus)",
    "evt2": "pip install 'spiketrack[prophesee]' (expelliarmus)",
    "evt3": "pip install 'spiketrack[prophesee-evt3]' (evlib)",
}


def read_header(path: Path, limit: int = 1 << 16) -> dict[str, str]:
    """The ``% key value`` lines at the start of a Prophesee file (keys lower-cased)."""
    header: dict[str, str] = {}
    with open(path, "rb") as fh:
        while fh.tell() < limit:
            pos = fh.tell()
            line = fh.readline()
            if not line.startswith(b"%"):
                fh.seek(pos)
                break
            text = line[1:].decode("latin-1").strip()
            if text.lower() == "end":
                break
            key, _, value = text.partition(" ")
            if key:
                header[key.lower()] = value.strip()
    return header


def geometry(header: dict[str, str]) -> tuple[int, int] | None:
    """(width, height) from a header, or None when it does not say."""
    if "geometry" in header:
        m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", header["geometry"])
        if m:
            return int(m.group(1)), int(m.group(2))
    if "format" in header:
        fields = dict(f.split("=", 1) for f in header["format"].split(";") if "=" in f)
        if "width" in fields and "height" in fields:
            return int(fields["width"]), int(fields["height"])
    if "width" in header and "height" in header:
        return int(header["width"]), int(header["height"])
    return None


def encoding(path: Path, header: dict[str, str]) -> str:
    """'dat', 'evt2' or 'evt3'."""
    if path.suffix.lower() == ".dat":
        return "dat"
    evt = header.get("evt", "").strip()
    fmt = header.get("format", "").split(";")[0].strip().upper()
    if fmt == "EVT3" or evt.startswith("3"):
        return "evt3"
    if fmt == "EVT2" or evt.startswith("2"):
        return "evt2"
    raise DataFormatError(path, "header", f"unknown RAW encoding (header evt={header.get('evt')!r}, "
                                          f"format={header.get('format')!r}); EVT2 and EVT3 are supported")


def read_prophesee(path: str | Path) -> tuple[EventArray, int | None, int | None]:
    """Decode a ``.raw``/``.dat`` file -> (events in file order, width, height); sizes None if the header is silent."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "Prophesee event file not found")
    header = read_header(path)
    enc = encoding(path, header)
    try:
        t, x, y, p = _decode_evlib(path) if enc == "evt3" else _decode_expelliarmus(path, enc)
    except ImportError:
        raise DataFormatError(path, "decoder", f"reading Prophesee {enc.upper()} files needs {INSTALL_HINT[enc]}") from None
    except Exception as exc:
        raise DataFormatError(path, "events", f"could not decode as {enc.upper()}: {exc}") from exc
    events = EventArray.from_arrays(t, x, y, p)  # in file order: the sequence readers decide about sorting
    size = geometry(header)
    return events, (size[0] if size else None), (size[1] if size else None)


def _decode_expelliarmus(path: Path, enc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from expelliarmus import Wizard

    arr = Wizard(encoding=enc).read(path)
    return arr["t"].astype(np.int64), arr["x"], arr["y"], arr["p"]


def _decode_evlib(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import evlib

    frame = evlib.load_events(str(path))
    frame = frame.collect() if hasattr(frame, "collect") else frame
    t = frame["t"]
    t = t.dt.total_microseconds() if str(t.dtype).lower().startswith("duration") else t
    return (t.to_numpy().astype(np.int64), frame["x"].to_numpy(), frame["y"].to_numpy(),
            (frame["polarity"].to_numpy() > 0).astype(np.uint8))
