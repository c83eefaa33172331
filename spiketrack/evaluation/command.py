"""``spiketrack evaluate``: SR/PR/NPR tables, JSON and plots for result folders (thin wrapper)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from spiketrack.evaluation.protocols import PROTOCOLS

if TYPE_CHECKING:
    from spiketrack.evaluation.evaluate import EvaluationResult

MAX_NOTES_PRINTED = 20


def add_arguments_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="native dataset folder (<name>.h5) or EventVOT-style folder")
    parser.add_argument(
        "--results", required=True, action="extend", nargs="+", metavar="DIR",
        help="results folder with <sequence>.txt (repeat for several trackers)",
    )
    parser.add_argument(
        "--names", nargs="+", metavar="NAME", help="tracker names, one per --results (default: folder names)"
    )
    parser.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), default="eventvot",
        help="eventvot = EventVOT/LaSOT MATLAB toolkit (default); pytracking = OSTrack/pytracking Python analysis",
    )
    parser.add_argument("--split", default=None, help="evaluate the sequences of <dataset>/<split>.txt (default: all)")
    parser.add_argument("--json", metavar="OUT", help="write overall, per-sequence, per-attribute numbers and curves")
    parser.add_argument("--plots", metavar="DIR", help="write success/precision/normalised precision PNG plots here")
    parser.add_argument(
        "--allow-missing", action="store_true",
        help="count sequences without a result file as all-failed instead of stopping",
    )


def evaluate_from_args(args: argparse.Namespace) -> EvaluationResult:
    """The :func:`~spiketrack.evaluation.evaluate.evaluate_trackers` call of ``spiketrack evaluate ARGS``."""
    from spiketrack.evaluation.evaluate import evaluate_trackers
    from spiketrack.outputs import check_output_dir_possible, check_output_file_possible

    if args.json:
        check_output_file_possible(args.json, "evaluation JSON")  # before the evaluation; made when written
    if args.plots:
        check_output_dir_possible(args.plots, "plot folder")
    return evaluate_trackers(
        args.dataset, args.results, names=args.names, protocol=args.protocol,
        split=args.split, allow_missing=args.allow_missing,
    )


def run_evaluate(args: argparse.Namespace) -> int:
    result = evaluate_from_args(args)
    for note in result.notes[:MAX_NOTES_PRINTED]:
        print(f"note: {note}", file=sys.stderr)
    if len(result.notes) > MAX_NOTES_PRINTED:
        extra = len(result.notes) - MAX_NOTES_PRINTED
        print(f"note: ... {extra} more notes" + (" (all in the JSON file)" if args.json else ""), file=sys.stderr)
    print(f"{len(result.ground_truth)} sequences, protocol {result.protocol.name} "
          f"(SR: AUC of 21 IoU thresholds; PR at {result.protocol.pr_threshold:g} px; "
          f"NPR at {result.protocol.npr_threshold:g})")
    print(result.table())
    attr = result.attribute_table()
    if attr:
        print()
        print(attr)
    if args.json:
        print(f"wrote {result.write_json(args.json)}")
    if args.plots:
        from spiketrack.evaluation.plots import plot_all

        for path in plot_all(result, args.plots):
            print(f"wrote {path}")
    return 0
