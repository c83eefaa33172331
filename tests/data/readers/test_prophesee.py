"""Prophesee RAW (EVT3) and DAT files: header parsing here, decoding through the optional expelliarmus.

The fixtures are encoded by hand from Prophesee's published format descriptions (docs.prophesee.ai: "DAT File
Format": 8-byte records, uint32 t then uint32 with x in bits 0-13, y in bits 14-27, polarity in bits 28-31;
"EVT 2.0 Format": 32-bit words, type in bits 28-31 — 0x8 TIME_HIGH (t >> 6), 0x0/0x1 CD OFF/ON with t & 63 in
bits 22-27, x in bits 11-21, y in bits 0-10; "EVT 3.0 Format": 16-bit words, type in bits 12-15 — 0x8 TIME_HIGH,
0x6 TIME_LOW, 0x0 ADDR_Y, 0x2 ADDR_X with polarity in bit 11), so the decoders are checked against an
independent encoding. The events cross several TIME_HIGH steps (the case expelliarmus 1.1.12 gets wrong in EVT3).
"""

from __future__ import annotations

import builtins
import struct

import numpy as np
import pytest

from spiketrack.data.readers.prophesee import encoding, geometry, read_header, read_prophesee
from spiketrack.errors import DataFormatError

EVENTS = [(1_000, 10, 20, 1), (1_500, 639, 479, 0), (4_500, 7, 8, 0), (9_000, 1, 2, 1), (70_000, 3, 4, 1)]


def write_dat(path):
    header = b"% Date 2024-01-01 00:00:00\n% Version 2\n% Width 640\n% Height 480\n"
    body = b"".join(struct.pack("<II", t, x | (y << 14) | (p << 28)) for t, x, y, p in EVENTS)
    path.write_bytes(header + bytes([0x0C, 8]) + body)


def write_evt2(path):
    words, high = [], None
    for t, x, y, p in EVENTS:
        if t >> 6 != high:
            high = t >> 6
            words.append((0x8 << 28) | high)
        words.append((p << 28) | ((t & 0x3F) << 22) | (x << 11) | y)
    path.write_bytes(b"% evt 2.0\n% geometry 640x480\n% end\n" + struct.pack(f"<{len(words)}I", *words))


def write_evt3(path):
    words, high = [], None
    for t, x, y, p in EVENTS:
        if t >> 12 != high:
            high = t >> 12
            words.append(0x8000 | high)
        words += [0x6000 | (t & 0xFFF), 0x0000 | y, 0x2000 | (p << 11) | x]
    header = b"% camera_integrator_name Prophesee\n% evt 3.0\n% format EVT3;height=480;width=640\n% end\n"
    path.write_bytes(header + struct.pack(f"<{len(words)}H", *words))


def test_header_geometry_and_encoding(tmp_path):
    dat, raw = tmp_path / "a.dat", tmp_path / "b.raw"
    write_dat(dat)
    write_evt3(raw)
    assert geometry(read_header(dat)) == (640, 480) and encoding(dat, read_header(dat)) == "dat"
    h = read_header(raw)
    assert geometry(h) == (640, 480) and encoding(raw, h) == "evt3"
    assert geometry({"geometry": "1280x720"}) == (1280, 720)
    assert encoding(raw, {"evt": "2.0"}) == "evt2"
    with pytest.raises(DataFormatError, match="unknown RAW encoding"):
        encoding(raw, {"evt": "4.0"})


def test_missing_decoder_says_what_to_install(tmp_path, monkeypatch):
    raw = tmp_path / "b.raw"
    write_evt3(raw)
    real_import = builtins.__import__

    def no_expelliarmus(name, *args, **kwargs):
        if name.startswith(("expelliarmus", "evlib")):
            raise ImportError("no expelliarmus")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_expelliarmus)
    with pytest.raises(DataFormatError, match=r"b.raw.*spiketrack\[prophesee-evt3\]"):
        read_prophesee(raw)
    dat = tmp_path / "a.dat"
    write_dat(dat)
    with pytest.raises(DataFormatError, match=r"a.dat.*spiketrack\[prophesee\]"):
        read_prophesee(dat)


@pytest.mark.parametrize(
    "writer, suffix, package",
    [(write_dat, ".dat", "expelliarmus"), (write_evt2, ".raw", "expelliarmus"), (write_evt3, ".raw", "evlib")],
)
def test_decode_hand_encoded_files(tmp_path, writer, suffix, package):
    pytest.importorskip(package, reason=f"optional decoder {package} not installed (extras prophesee / prophesee-evt3)")
    path = tmp_path / f"rec{suffix}"
    writer(path)
    events, width, height = read_prophesee(path)
    assert (width, height) == (640, 480)
    assert events.t.tolist() == [e[0] for e in EVENTS]
    assert events.x.tolist() == [e[1] for e in EVENTS] and events.y.tolist() == [e[2] for e in EVENTS]
    assert events.p.tolist() == [e[3] for e in EVENTS]
    assert events.t.dtype == np.int64
