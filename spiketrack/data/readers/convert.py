"""`spiketrack data convert`: public dataset layouts -> native sequence files (docs/architecture.md, "Sequence
files") + split lists.

Each sequence is read with the same in-place reader as :func:`spiketrack.data.readers.open_public_dataset`
and written with :func:`spiketrack.data.h5seq.save_sequence` (temporary name, then rename), so an
interrupted or failed sequence leaves no partial file. A bad sequence is reported and skipped; the run goes on
and ends with a summary (exit code 1 if any sequence failed). A file that cannot be written (disk full, no
permission) stops the run at once: one line naming it, exit code 2, no split list written.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from spiketrack.atomic import clean_stale_temps
from spiketrack.data.dataset import write_split
from spiketrack.data.h5seq import save_sequence
from spiketrack.data.readers import FORMATS, PublicDataset, parse_split_file
from spiketrack.data.readers.common import AbsentConvention
from spiketrack.errors import ConfigError, OutputError, SpiketrackError
from spiketrack.outputs import prepare_output_dir


@dataclass
class ConvertSummary:
    """What a conversion did."""

    fmt: str
    src: Path
    out: Path
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already converted (skip_existing)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (sequence, message)
    repairs: list[str] = field(default_factory=list)  # what was changed on the way (--sort-events), one line each
    splits: dict[str, list[str]] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def report(self) -> str:
        lines = [
            f"{self.fmt}: converted {len(self.converted)} sequences ({self.events:,} events, "
            f"{self.seconds:.1f} s, {self.events_per_second:,.0f} events/s) into {self.out}"
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} already converted")
        for split, names in sorted(self.splits.items()):
            lines.append(f"split {split}: {len(names)} sequences -> {split}.txt")
        if self.repairs:
            lines.append(f"repaired {len(self.repairs)} sequences:")
            lines.extend(f"  {line}" for line in self.repairs)
        if self.failures:
            lines.append(f"FAILED {len(self.failures)} sequences:")
            lines.extend(f"  {name}: {message}" for name, message in self.failures)
        return "\n".join(lines)


def convert_dataset(
    fmt: str,
    src: str | Path,
    out: str | Path,
    *,
    split_files: dict[str, Path] | None = None,
    attributes: str | Path | None = None,
    absent_means: AbsentConvention | str | None = None,
    rgb: bool = True,
    names: list[str] | None = None,
    skip_existing: bool = False,
    progress: bool = True,
    sort_events: bool = False,
) -> ConvertSummary:
    """Convert every sequence of a public dataset folder into ``<out>/<name>.h5`` and write split lists.

    ``split_files`` maps split names to name lists (e.g. ``{"test": "EventVOT_testing_subset.txt"}``); they
    override splits found from folder names ('Training Subset' -> train, ...). Split lists name only sequences
    that were converted. ``rgb=False`` leaves out intensity frames. A sequence file that cannot be written
    (disk full, ...) raises ``OutputError`` naming it; the files converted before it are kept. A sequence whose event
    timestamps decrease fails unless ``sort_events`` (then its events are sorted and the summary says so). Split
    lists are written only for splits with a converted sequence; a run that converted nothing removes the output
    folder it made.
    """
    dataset = PublicDataset(fmt, src, split_files=split_files, attributes=attributes, absent_means=absent_means,
                            sort_events=sort_events)
    out = Path(out)
    summary = ConvertSummary(dataset.format.name, Path(src), out)
    todo = names if names is not None else dataset.names()
    if not todo:
        raise SpiketrackError(f"{src}: no {dataset.format.name} sequence folders found")
    unknown = [n for n in todo if n not in dataset.folders]
    if unknown:
        known = ", ".join(sorted(dataset.folders)[:8]) + (" ..." if len(dataset.folders) > 8 else "")
        raise ConfigError(f"--sequence {unknown[0]}: no {dataset.format.name} sequence folder of that name under "
                          f"{src} (sequences: {known or 'none'})")
    for name, folder in dataset.duplicates:
        summary.failures.append((name, f"{folder}: a second folder with this name (kept {dataset.folders[name]})"))
    existed = out.exists()
    prepare_output_dir(out, "conversion output folder")
    clean_stale_temps(out)
    start = time.perf_counter()
    for name in tqdm(todo, desc=f"convert {dataset.format.name}", unit="seq", disable=not progress):
        target = out / f"{name}.h5"
        if skip_existing and target.is_file():
            summary.skipped.append(name)
            continue
        try:
            notes: list[str] = []
            with dataset.open(name, notes=notes) as seq:
                frames = seq.rgb_array() if rgb and seq.has_rgb and hasattr(seq, "rgb_array") else None
                save_sequence(target, seq, rgb=frames)  # a write failure: OutputError naming target
                summary.events += len(seq.events)
            summary.converted.append(name)
            summary.repairs.extend(notes)
        except OutputError:
            raise  # the output side (disk full, no permission): no later sequence could be written either
        except (SpiketrackError, OSError, ValueError, MemoryError) as exc:
            summary.failures.append((name, str(exc)))
    summary.seconds = time.perf_counter() - start
    done = set(summary.converted) | set(summary.skipped)
    known = set(dataset.folders)
    for split, split_names in sorted(dataset.splits.items()):
        missing = [n for n in split_names if n not in known]
        for n in missing:
            summary.failures.append((n, f"listed in split {split!r} but no sequence folder found under {src}"))
        kept = [n for n in split_names if n in done]
        if kept:  # a list naming no sequence would be an empty split for every later command
            write_split(out, split, kept)
            summary.splits[split] = kept
    if not existed and not any(out.iterdir()):
        out.rmdir()  # nothing converted: no empty folder left behind
    return summary


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `spiketrack data convert`."""
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="layout of the source dataset")
    parser.add_argument("--src", required=True, help="dataset folder (sequence folders, or split folders of them)")
    parser.add_argument("--out", required=True, help="output folder for <name>.h5 files and split lists")
    parser.add_argument("--split-file", action="append", default=[], metavar="[SPLIT=]FILE",
                        help="name list of a split, e.g. test=EventVOT_testing_subset.txt (repeatable; "
                             "without SPLIT= the split is guessed from the file name)")
    parser.add_argument("--attributes", help="attribute table (CSV export, name + one 0/1 column per attribute) "
                                             "or folder of <seq>.txt attribute files")
    parser.add_argument("--absent-means", choices=[c.value for c in AbsentConvention],
                        help="override what 1 means in the visibility files (default: the dataset's convention)")
    parser.add_argument("--no-rgb", action="store_true", help="do not store intensity (APS) frames")
    parser.add_argument("--sequence", action="append", help="convert only this sequence (repeatable)")
    parser.add_argument("--skip-existing", action="store_true", help="keep <name>.h5 files already in --out")
    parser.add_argument("--sort-events", action="store_true",
                        help="sort events whose timestamps decrease by time (stable) and report it; without it such "
                             "a sequence is not converted")


def run_convert(args: argparse.Namespace) -> int:
    """Run the conversion; prints the summary; 0 if every sequence converted, 1 otherwise."""
    split_files = dict(parse_split_file(spec) for spec in args.split_file)
    summary = convert_dataset(
        args.format,
        args.src,
        args.out,
        split_files=split_files,
        attributes=args.attributes,
        absent_means=args.absent_means,
        rgb=not args.no_rgb,
        names=args.sequence,
        skip_existing=args.skip_existing,
        progress=sys.stderr.isatty(),
        sort_events=args.sort_events,
    )
    print(summary.report())
    return 0 if summary.ok else 1
