"""`spiketrack data ...`: synth | convert | info | validate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spiketrack.data.dataset import check_split_name
from spiketrack.data.h5seq import Violation, open_sequence, validate_sequence
from spiketrack.errors import DataFormatError, SpiketrackError


def sequence_info(path: str | Path) -> dict[str, Any]:
    """Summary of one sequence file (what `data info` prints)."""
    with open_sequence(path) as seq:
        t0 = int(seq.frame_times[0])
        t1 = int(seq.frame_times[-1])
        visible = seq.boxes[seq.absent == 0]
        return {
            "file": str(path),
            "name": seq.name,
            "source": seq.source,
            "width": seq.width,
            "height": seq.height,
            "frames": seq.num_frames,
            "events": seq.num_events,
            "duration_s": (t1 - t0) / 1e6,
            "frame_rate_hz": (seq.num_frames - 1) / ((t1 - t0) / 1e6) if t1 > t0 else None,
            "events_per_frame": seq.num_events / max(1, seq.num_frames),
            "absent_frames": int(seq.absent.sum()),
            "has_rgb": seq.has_rgb,
            "attributes": seq.attributes,
            "mean_box_wh": visible[:, 2:].mean(axis=0).round(2).tolist() if len(visible) else None,
        }


def validate_folder(root: str | Path) -> tuple[int, list[Violation]]:
    """Validate every ``*.h5`` file of a folder (and that split lists name existing files)."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    files = sorted(p for p in root.glob("*.h5") if not p.name.startswith("."))
    if not files:
        raise DataFormatError(root, None, "no sequence files (<name>.h5) in the folder: nothing to validate "
                                          "(`spiketrack data convert` or `data synth` makes them)")
    violations: list[Violation] = []
    for path in files:
        violations.extend(validate_sequence(path))
    stems = {p.stem for p in files}
    for split in sorted(root.glob("*.txt")):
        try:
            text = split.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            violations.append(Violation(str(split), "file", f"not a UTF-8 text file (byte {exc.start})"))
            continue
        for line_no, line in enumerate(text.splitlines(), 1):
            name = line.split("#", 1)[0].strip().rstrip("/")
            if not name:
                continue
            try:
                check_split_name(split, line_no, name)
            except DataFormatError as exc:
                violations.append(Violation(str(split), f"line {line_no}", exc.problem))
                continue
            if name not in stems:
                violations.append(Violation(str(split), f"line {line_no}", f"no sequence file {name}.h5 in {root}"))
    return len(files), violations


def add_arguments_data(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("synth", help="generate the synthetic benchmark (simulated events, exact boxes)")
    from spiketrack.data.synth import add_synth_arguments

    add_synth_arguments(p)
    p = sub.add_parser("convert", help="convert a public dataset (EventVOT, FE108, VisEvent, COESOT, FELT)")
    from spiketrack.data.readers.convert import add_convert_arguments

    add_convert_arguments(p)
    p = sub.add_parser("info", help="summary of a sequence file")
    p.add_argument("file", help="native sequence file (.h5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p = sub.add_parser("validate", help="check every file of a dataset folder against the sequence format")
    p.add_argument("folder", help="dataset folder of .h5 sequence files")


def run_data(args: argparse.Namespace) -> int:
    cmd = args.data_command
    if cmd == "synth":
        from spiketrack.data.synth import run_synth

        return run_synth(args)
    if cmd == "convert":
        from spiketrack.data.readers.convert import run_convert

        return run_convert(args)
    if cmd == "info":
        info = sequence_info(args.file)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            width = max(len(k) for k in info)
            for key, value in info.items():
                if isinstance(value, float):
                    value = f"{value:.3f}"
                print(f"{key:<{width}}  {value}")
        return 0
    if cmd == "validate":
        n, violations = validate_folder(args.folder)
        for v in violations:
            print(v, file=sys.stderr)
        bad_files = len({v.path for v in violations})
        print(f"{n} sequence files checked, {len(violations)} violations in {bad_files} files")
        return 1 if violations else 0
    raise SpiketrackError(f"unknown data subcommand {cmd}")  # pragma: no cover


