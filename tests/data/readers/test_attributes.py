"""Attribute tables (EventVOT spreadsheet export) and attribute folders (VisEvent/COESOT toolkits)."""

from __future__ import annotations

import pytest

from spiketrack.data.readers.attributes import (
    COESOT_ATTRIBUTES,
    EVENTVOT_ATTRIBUTES,
    load_attributes,
    read_attribute_table,
)
from spiketrack.errors import DataFormatError


def test_eventvot_codes_from_toolkit():
    assert len(EVENTVOT_ATTRIBUTES) == 14 and EVENTVOT_ATTRIBUTES[0] == "CM" and EVENTVOT_ATTRIBUTES[-1] == "ST"
    assert len(COESOT_ATTRIBUTES) == 17


def test_table_without_header_uses_default_codes_and_empty_cells_are_zero(tmp_path):
    p = tmp_path / "att.csv"
    p.write_text("rec_a,1,,0,1" + "," * 10 + "\nrec_b" + ",0" * 13 + ",1\n")
    table = read_attribute_table(p, EVENTVOT_ATTRIBUTES)
    assert table == {"rec_a": ["CM", "HOC"], "rec_b": ["ST"]}  # columns CM DEF MOC HOC ...


def test_table_header_names_codes(tmp_path):
    p = tmp_path / "att.tsv"
    p.write_text("video\tFM\tLI\nrec_a\t1\t0\nrec_b\t1\t1\n")
    assert read_attribute_table(p, None) == {"rec_a": ["FM"], "rec_b": ["FM", "LI"]}


def test_table_bad_value(tmp_path):
    p = tmp_path / "att.csv"
    p.write_text("name,FM\nrec_a,yes\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_attribute_table(p, None)


def test_table_without_codes(tmp_path):
    p = tmp_path / "att.csv"
    p.write_text("rec_a,1,0\n")
    with pytest.raises(DataFormatError, match="header"):
        read_attribute_table(p, None)


def test_attribute_folder(tmp_path):
    (tmp_path / "seq1.txt").write_text("\n".join(["1"] + ["0"] * 15 + ["1"]) + "\n")
    (tmp_path / "seq2_attribute.txt").write_text("\n".join(["0"] * 16 + ["1"]))
    out = load_attributes(tmp_path, ["seq1", "seq2", "seq3"], COESOT_ATTRIBUTES)
    assert out == {"seq1": ["CM", "BOM"], "seq2": ["BOM"]}
    (tmp_path / "seq3.txt").write_text("1\n0\n")
    with pytest.raises(DataFormatError, match="2 flags, expected 17"):
        load_attributes(tmp_path, ["seq3"], COESOT_ATTRIBUTES)
