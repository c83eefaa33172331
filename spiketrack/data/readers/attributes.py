"""Per-sequence attribute flags (challenge labels such as fast motion or low light).

Two sources are accepted:
- a table (CSV export of a spreadsheet such as EventVOT's ``attributes_anno_event.xlsx``): one row per
  sequence, the name in the first column and one 0/1 column per attribute (empty cell = 0, as the EventVOT
  toolkit's ``attribute_define.m`` reads it); an optional header row names the attribute codes;
- a folder of ``<seq>.txt`` (or VisEvent's ``<seq>_attribute.txt``) files with one 0/1 value per line in the
  dataset's attribute order (the ``annos/att`` folders of the VisEvent and COESOT toolkits).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from spiketrack.errors import DataFormatError

# EventVOT_eval_toolkit/Evaluate_EventVOT_benchmark_attributes.m (github.com/Event-AHU/EventVOT_Benchmark)
EVENTVOT_ATTRIBUTES = ("CM", "DEF", "MOC", "HOC", "FOC", "LI", "OV", "FM", "BC", "NM", "BOM", "SIO", "SV", "ST")
# Evaluate_VisEvent_SOT_benchmark.m (github.com/wangxiao5791509/VisEvent_SOT_Benchmark) and
# COESOT_eval_toolkit/Evaluate_COESOT_benchmark_attributes.m (github.com/Event-AHU/COESOT): same 17 codes
VISEVENT_ATTRIBUTES = (
    "CM", "ROT", "DEF", "FOC", "LI", "OV", "POC", "VC", "SV", "BC", "MB", "ARC", "FM", "NMO", "IV", "OE", "BOM",
)
COESOT_ATTRIBUTES = VISEVENT_ATTRIBUTES


def _flag(value: str, path: Path, where: str) -> bool:
    value = value.strip()
    if value == "":
        return False
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(path, where, f"expected 0/1 or empty, got {value!r}") from None
    if number not in (0.0, 1.0):
        raise DataFormatError(path, where, f"expected 0/1 or empty, got {value!r}")
    return number == 1.0


def read_attribute_table(path: str | Path, codes: tuple[str, ...] | None) -> dict[str, list[str]]:
    """``{sequence name: [codes of the attributes it has]}`` from a CSV/TSV export.

    The header row (first cell not a sequence of flags) supplies the codes; without one, ``codes`` must
    give them in column order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "attribute table not found")
    text = path.read_text(encoding="utf-8-sig")
    first_line = text.splitlines()[0] if text.strip() else ""
    dialect = "excel-tab" if "\t" in first_line else "excel"
    rows = [r for r in csv.reader(text.splitlines(), dialect=dialect) if any(c.strip() for c in r)]
    if not rows:
        raise DataFormatError(path, None, "attribute table is empty")
    header_codes: tuple[str, ...] | None = None
    first_flags = rows[0][1:]
    if any(c.strip() and not re.fullmatch(r"[01](\.0*)?", c.strip()) for c in first_flags):
        header_codes = tuple(c.strip() for c in first_flags)
        rows = rows[1:]
    use = header_codes or codes
    if use is None:
        raise DataFormatError(path, "header", "no header row naming the attribute codes, and no default codes")
    out: dict[str, list[str]] = {}
    for line_no, row in enumerate(rows, 2 if header_codes else 1):
        name = row[0].strip()
        flags = row[1:]
        if len(flags) > len(use) and any(c.strip() for c in flags[len(use):]):
            raise DataFormatError(path, f"line {line_no}", f"{len(flags)} attribute columns, expected {len(use)}")
        values = [_flag(c, path, f"line {line_no}") for c in flags[: len(use)]]
        out[name] = [code for code, on in zip(use, values) if on]
    return out


def read_attribute_folder(folder: str | Path, names: list[str], codes: tuple[str, ...]) -> dict[str, list[str]]:
    """Attributes from ``<folder>/<seq>.txt`` or ``<seq>_attribute.txt`` files (missing files: no attributes)."""
    folder = Path(folder)
    out: dict[str, list[str]] = {}
    for name in names:
        for candidate in (folder / f"{name}.txt", folder / f"{name}_attribute.txt"):
            if candidate.is_file():
                values = [v for v in re.split(r"[,\s]+", candidate.read_text()) if v]
                if len(values) != len(codes):
                    raise DataFormatError(candidate, "rows", f"{len(values)} flags, expected {len(codes)} ({', '.join(codes)})")
                flags = [_flag(v, candidate, f"value {i + 1}") for i, v in enumerate(values)]
                out[name] = [c for c, on in zip(codes, flags) if on]
                break
    return out


def load_attributes(
    source: str | Path | None, names: list[str], codes: tuple[str, ...] | None
) -> dict[str, list[str]]:
    """Attributes from a table file or a folder (``None``: none)."""
    if source is None:
        return {}
    source = Path(source)
    if source.is_dir():
        if codes is None:
            raise DataFormatError(source, None, "attribute folder given but this dataset has no known attribute order")
        return read_attribute_folder(source, names, codes)
    return read_attribute_table(source, codes)
