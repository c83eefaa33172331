"""Readers of public event-tracking datasets (EventVOT, FE108, VisEvent, COESOT, FELT) and event files
(AEDAT 4, Prophesee RAW/DAT).

Each dataset can be read in place — :func:`open_public_dataset` gives an object with ``names(split)`` and
``open(name) -> Sequence`` like :class:`spiketrack.data.dataset.SequenceDataset` — or converted into native
sequence files with :func:`spiketrack.data.readers.convert.convert_dataset` (``spiketrack data convert``).
Both paths give the same events, boxes and absent flags.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spiketrack.data.dataset import read_split
from spiketrack.data.readers import coesot, eventvot, fe108, felt, visevent
from spiketrack.data.readers.attributes import load_attributes
from spiketrack.data.readers.common import AbsentConvention
from spiketrack.data.readers.davis import DavisLayout, open_davis_sequence
from spiketrack.data.sequence import Sequence
from spiketrack.errors import ConfigError, DataFormatError


@dataclass(frozen=True)
class DatasetFormat:
    """How to find and open the sequences of one public dataset."""

    name: str
    is_sequence_dir: Callable[[Path], bool]
    open: Callable[..., Sequence]
    attribute_codes: tuple[str, ...] | None


def _davis(layout: DavisLayout) -> DatasetFormat:
    def _open(folder: Path, **kwargs) -> Sequence:
        return open_davis_sequence(folder, layout, **kwargs)

    return DatasetFormat(layout.name, layout.is_sequence_dir, _open, layout.attribute_codes)


FORMATS: dict[str, DatasetFormat] = {
    "eventvot": DatasetFormat("eventvot", eventvot.is_sequence_dir, eventvot.open_eventvot_sequence,
                              eventvot.ATTRIBUTE_CODES),
    "fe108": _davis(fe108.LAYOUT),
    "visevent": _davis(visevent.LAYOUT),
    "coesot": _davis(coesot.LAYOUT),
    "felt": _davis(felt.LAYOUT),
}


def get_format(name: str) -> DatasetFormat:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown dataset format {name!r}; expected one of {', '.join(FORMATS)}") from None


def split_of_folder(name: str) -> str:
    """Split name for a folder such as 'Training Subset', 'train', 'test_subset', 'validating Subset'."""
    low = name.lower()
    for key, split in (("train", "train"), ("test", "test"), ("val", "val")):
        if key in low:
            return split
    return re.sub(r"[^a-z0-9_]+", "_", low).strip("_") or "all"


def parse_split_file(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (split name guessed from the file name, e.g. EventVOT_testing_subset.txt -> test)."""
    if "=" in spec and not Path(spec).exists():
        name, _, path = spec.partition("=")
        return name.strip(), Path(path.strip())
    path = Path(spec)
    return split_of_folder(path.stem), path


class PublicDataset:
    """A public dataset read in place: sequence folders directly under ``root`` or under split folders."""

    def __init__(
        self,
        fmt: str,
        root: str | Path,
        *,
        split_files: dict[str, Path] | None = None,
        attributes: str | Path | None = None,
        absent_means: AbsentConvention | str | None = None,
        sort_events: bool = False,
    ) -> None:
        self.format = get_format(fmt)
        self.sort_events = sort_events  # events whose timestamps decrease: sorted (True) or refused
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFormatError(self.root, None, "dataset folder not found")
        self.absent_means = AbsentConvention(absent_means) if absent_means is not None else None
        self.folders: dict[str, Path] = {}
        self.duplicates: list[tuple[str, Path]] = []
        self.splits: dict[str, list[str]] = {}
        self._discover()
        for split, path in (split_files or {}).items():
            self.splits[split] = read_split(Path(path))
        self.attributes = load_attributes(attributes, sorted(self.folders), self.format.attribute_codes)

    def _add(self, folder: Path, split: str | None) -> None:
        if folder.name in self.folders:
            self.duplicates.append((folder.name, folder))
            return
        self.folders[folder.name] = folder
        if split is not None:
            self.splits.setdefault(split, []).append(folder.name)

    def _discover(self) -> None:
        is_seq = self.format.is_sequence_dir
        if is_seq(self.root):
            self._add(self.root, None)
            return
        for child in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if is_seq(child):
                self._add(child, None)
                continue
            for grandchild in sorted(p for p in child.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if is_seq(grandchild):
                    self._add(grandchild, split_of_folder(child.name))

    def names(self, split: str | None = None) -> list[str]:
        """Sequence names (all found, or those of ``split``)."""
        if split is None:
            return sorted(self.folders)
        if split not in self.splits:
            raise ConfigError(f"{self.root}: no split {split!r} (known: {', '.join(sorted(self.splits)) or 'none'})")
        return list(self.splits[split])

    def folder(self, name: str) -> Path:
        if name not in self.folders:
            raise DataFormatError(self.root, name, f"no sequence folder named {name}")
        return self.folders[name]

    def open(self, name: str, notes: list[str] | None = None) -> Sequence:
        """Read one sequence in place; what was repaired on the way (sorted events) is appended to ``notes``."""
        kwargs = {"attributes": self.attributes.get(name, []), "sort_events": self.sort_events, "notes": notes}
        if self.absent_means is not None:
            kwargs["absent_means"] = self.absent_means
        return self.format.open(self.folder(name), **kwargs)

    def __repr__(self) -> str:
        return f"PublicDataset({self.format.name!r}, {str(self.root)!r}, sequences={len(self.folders)})"


def open_public_dataset(fmt: str, root: str | Path, **kwargs) -> PublicDataset:
    """A public dataset folder read in place (see :class:`PublicDataset`)."""
    return PublicDataset(fmt, root, **kwargs)


__all__ = ["FORMATS", "DatasetFormat", "PublicDataset", "open_public_dataset", "get_format", "parse_split_file"]
