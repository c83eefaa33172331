"""A dataset folder: native sequence files ``<name>.h5`` plus ``train.txt`` / ``test.txt`` name lists."""

from __future__ import annotations

from pathlib import Path

from spiketrack.atomic import atomic_write_text
from spiketrack.data.h5seq import open_sequence
from spiketrack.data.sequence import Sequence
from spiketrack.errors import DataFormatError

SEQUENCE_SUFFIX = ".h5"


def write_split(root: str | Path, split: str, names: list[str]) -> Path:
    """Write ``<root>/<split>.txt`` (one sequence name per line) atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(root / f"{split}.txt", "".join(f"{n}\n" for n in names))


def read_split(path: str | Path) -> list[str]:
    """Names listed in a split file (blank lines and '#' comments ignored; a UTF-8 BOM and a trailing '/' of a
    folder name, as in public datasets' lists, are dropped)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "split list not found")
    names = []
    for i, line in enumerate(_split_text(path).splitlines(), start=1):
        line = line.split("#", 1)[0].strip().rstrip("/")
        if line:
            check_split_name(path, i, line)
            names.append(line)
    return names


def _split_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not a UTF-8 text file (byte {exc.start})") from None


def check_split_name(path: Path, line_no: int, name: str) -> None:
    """A listed name stays inside the dataset folder: no absolute path, no '..' component."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise DataFormatError(
            path, f"line {line_no}", f"{name!r} points outside the dataset folder; expected a sequence name"
        )


class SequenceDataset:
    """Native sequence files in one folder, with optional split lists."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFormatError(self.root, None, "dataset folder not found")

    def names(self, split: str | None = None) -> list[str]:
        """Sequence names of ``split`` (from ``<split>.txt``), or every file when ``split`` is None."""
        if split is None:
            return sorted(p.stem for p in self.root.glob(f"*{SEQUENCE_SUFFIX}") if not p.name.startswith("."))
        names = read_split(self.root / f"{split}.txt")
        if not names:
            raise DataFormatError(self.root / f"{split}.txt", None, "the split list names no sequences")
        for name in names:
            if not self.path(name).is_file():
                raise DataFormatError(self.root / f"{split}.txt", name, f"listed sequence has no file {name}.h5")
        return names

    def path(self, name: str) -> Path:
        return self.root / f"{name}{SEQUENCE_SUFFIX}"

    def open(self, name: str) -> Sequence:
        return open_sequence(self.path(name))

    def __repr__(self) -> str:
        return f"SequenceDataset({str(self.root)!r})"
