"""``spiketrack show``: events, ground truth and each tracker's box as an animated GIF and a contact sheet of the
worst frames (thin CLI over :mod:`spiketrack.evaluation.show`)."""

from __future__ import annotations

import argparse

from spiketrack.errors import ConfigError
from spiketrack.evaluation.protocols import PROTOCOLS


def add_arguments_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="native dataset folder (<name>.h5 sequence files)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sequence", action="append", metavar="NAME", help="sequence to render; repeatable")
    which.add_argument("--worst", action="store_true",
                       help="render the worst sequence (lowest SR) of each tracker on --split")
    parser.add_argument(
        "--results", required=True, action="extend", nargs="+", metavar="DIR",
        help="results folder with <sequence>.txt (spiketrack track --out); repeat for several trackers",
    )
    parser.add_argument("--names", nargs="+", metavar="NAME",
                        help="tracker names, one per --results (default: folder names)")
    parser.add_argument("--out", required=True, help="folder for <sequence>.gif and <sequence>_worst.png")
    parser.add_argument("--split", default=None, help="with --worst: the split list to search (default: all files)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="eventvot",
                        help="with --worst: the protocol whose SR ranks the sequences (default eventvot)")
    parser.add_argument("--frames", default=None, metavar="START:STOP",
                        help="frame range to render, STOP excluded (default: every frame)")
    parser.add_argument("--step", type=int, default=1, help="render every STEP-th frame (default 1)")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second of the animation (default 8)")
    parser.add_argument("--scale", type=float, default=None,
                        help="pixels per sensor pixel (default: auto, at most 1024 px wide)")
    parser.add_argument("--worst-frames", type=int, default=8,
                        help="frames on the contact sheet of the lowest IoU (default 8; 0: no sheet)")
    parser.add_argument("--no-rgb", action="store_true", help="events only, even where RGB frames are stored")


def _frame_range(text: str | None) -> tuple[int, int | None]:
    if text is None:
        return 0, None
    start, sep, stop = text.partition(":")
    try:
        first = int(start) if start else 0
        if not sep:  # one frame
            return first, first + 1
        return first, int(stop) if stop else None
    except ValueError:
        raise ConfigError(f"--frames: expected START:STOP (integers), got {text!r}") from None


def options_from_args(args: argparse.Namespace):  # noqa: ANN201 - ShowOptions
    from spiketrack.evaluation.show import ShowOptions

    start, stop = _frame_range(args.frames)
    options = ShowOptions(start=start, stop=stop, step=args.step, fps=args.fps, scale=args.scale,
                          worst_frames=args.worst_frames, rgb=not args.no_rgb)
    options.check()
    return options


def show_from_args(args: argparse.Namespace) -> dict:
    """The :func:`~spiketrack.evaluation.show.show_sequence` / :func:`~spiketrack.evaluation.show.show_worst` calls
    of ``spiketrack show ARGS``: sequence name -> ShowResult."""
    from spiketrack.evaluation.show import show_sequence, show_worst

    options = options_from_args(args)
    if args.worst:
        by_tracker = show_worst(args.dataset, args.results, args.out, names=args.names, split=args.split,
                                protocol=args.protocol, options=options)
        return {r.sequence: r for r in by_tracker.values()}
    if args.split is not None:
        raise ConfigError("--split selects sequences only with --worst; name them with --sequence")
    return {name: show_sequence(args.dataset, name, args.results, args.out, names=args.names, options=options)
            for name in dict.fromkeys(args.sequence)}


def run_show(args: argparse.Namespace) -> int:
    for result in show_from_args(args).values():
        print(f"wrote {result.gif} ({len(result.frames)} frames)")
        if result.sheet is not None:
            worst = ", ".join(f"{k} ({v:.2f})" for k, v in result.worst)
            print(f"wrote {result.sheet} (worst frames, lowest IoU: {worst})")
    return 0
