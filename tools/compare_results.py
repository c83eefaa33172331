"""Compare two quickstart (or ``spiketrack track``) results trees byte for byte, timing files excepted.

A refactoring must not change what the trackers output: run the same small fixed-seed quickstart before and
after, e.g.::

    spiketrack quickstart --work /tmp/before --no-progress --set quickstart.train_sequences=4 \
        --set quickstart.test_sequences=3 --set quickstart.frames=20:20 --set quickstart.workers=1 \
        --set quickstart.multi_object=0 --set data.negative_prob=0 --set data.distractor_prob=0 \
        --set train.epochs=1 --set train.steps_per_epoch=3 \
        --set train.batch_size=4 --set data.num_workers=0 --set train.preload_mb=0 \
        --set quickstart.report_out=/tmp/before_report

then ``python tools/compare_results.py /tmp/before/results /tmp/after/results``. Every box file
(``<seq>.txt``) and energy file (``<seq>_energy.json``) of the first tree must exist in the second with the same
bytes; ``*_time.txt`` (wall-clock times) are skipped. Exit code 1 when anything differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def differences(before: Path, after: Path) -> list[str]:
    """Relative paths of result files of ``before`` that are missing from, or differ in, ``after``."""
    out = []
    for path in sorted(before.rglob("*")):
        if not path.is_file() or path.name.endswith("_time.txt"):
            continue
        if not (path.suffix == ".txt" or path.name.endswith("_energy.json")):
            continue
        rel = path.relative_to(before)
        other = after / rel
        if not other.is_file() or other.read_bytes() != path.read_bytes():
            out.append(str(rel))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path, help="results tree of the reference run")
    parser.add_argument("after", type=Path, help="results tree to check")
    args = parser.parse_args()
    diff = differences(args.before, args.after)
    for rel in diff:
        print(f"DIFF {rel}")
    print(f"differences: {len(diff)}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
