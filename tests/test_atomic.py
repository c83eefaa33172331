"""Atomic text writes: whole content under the final name, no temporary file left, old file replaced."""

from __future__ import annotations

from pathlib import Path

from spiketrack.atomic import atomic_write_text


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    assert atomic_write_text(path, "first\n") == path
    atomic_write_text(path, "second\nline\n")
    assert path.read_text() == "second\nline\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
