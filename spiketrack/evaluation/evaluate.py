"""Evaluate result folders against a dataset: the library behind ``spiketrack evaluate``.

A results folder holds one ``<sequence>.txt`` per sequence (``x,y,w,h`` per frame) and optionally
``<sequence>_time.txt`` (seconds per frame, one number per line). :func:`evaluate_trackers` returns an
:class:`EvaluationResult` with overall, per-sequence and per-attribute SR/PR/NPR (percent), the curves,
FPS where times exist, and notes on everything the protocol repaired or padded (never a silent zero).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spiketrack.atomic import atomic_write_text
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.evaluation.groundtruth import GroundTruth, load_ground_truth
from spiketrack.evaluation.protocols import (
    Aggregate,
    InvalidPrediction,
    Protocol,
    SequenceCurves,
    aggregate,
    failed_curves,
    get_protocol,
    sequence_curves,
)
from spiketrack.evaluation.textfiles import read_boxes, read_times

TIME_SUFFIX = "_time.txt"


def _lines_text(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    return shown + (f", ... ({len(rows)} in all)" if len(rows) > limit else "")


@dataclass
class TrackerResult:
    """One tracker's numbers: overall, per sequence, per attribute."""

    name: str
    results_dir: str
    overall: Aggregate
    sequences: dict[str, SequenceCurves]
    attributes: dict[str, Aggregate]
    fps: float | None = None
    missing: list[str] = field(default_factory=list)


@dataclass
class EvaluationResult:
    """Everything ``spiketrack evaluate`` prints, plots and writes."""

    protocol: Protocol
    dataset: str
    split: str | None
    ground_truth: list[GroundTruth]
    trackers: dict[str, TrackerResult]
    notes: list[str] = field(default_factory=list)

    @property
    def attribute_codes(self) -> list[str]:
        return sorted({a for gt in self.ground_truth for a in gt.attributes})

    def to_dict(self) -> dict:
        """JSON-ready dict: ``trackers.<name>.SR|PR|NPR`` (percent), ``.sequences.<seq>.SR|PR|NPR``,
        ``.curves`` (percent, thresholds under ``thresholds``), ``.attributes.<code>.SR|PR|NPR``."""
        p = self.protocol
        lengths = {gt.name: gt.length for gt in self.ground_truth}
        trackers = {}
        for name, tr in self.trackers.items():
            trackers[name] = {
                **tr.overall.scores(),
                "FPS": tr.fps,
                "results": tr.results_dir,
                "missing": list(tr.missing),
                "sequences_counted": dict(tr.overall.counted),
                "sequences": {
                    seq: {**c.scores(p), "frames": lengths[seq], "missing": c.missing}
                    for seq, c in tr.sequences.items()
                },
                "curves": {
                    "success": (tr.overall.success * 100.0).tolist(),
                    "precision": (tr.overall.precision * 100.0).tolist(),
                    "norm_precision": (tr.overall.norm_precision * 100.0).tolist(),
                },
                "attributes": {
                    code: {**agg.scores(), "sequences": int(sum(code in gt.attributes for gt in self.ground_truth))}
                    for code, agg in tr.attributes.items()
                },
            }
        return {
            "protocol": p.name,
            "dataset": self.dataset,
            "split": self.split,
            "num_sequences": len(self.ground_truth),
            "thresholds": {
                "success": p.success_thresholds.tolist(),
                "precision": p.precision_thresholds.tolist(),
                "norm_precision": p.norm_precision_thresholds.tolist(),
                "PR": p.pr_threshold,
                "NPR": p.npr_threshold,
            },
            "trackers": trackers,
            "notes": list(self.notes),
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def table(self) -> str:
        """Tracker | SR | PR | NPR | FPS (when any tracker has times), percent with one decimal."""
        with_fps = any(tr.fps is not None for tr in self.trackers.values())
        width = max([7] + [len(n) for n in self.trackers])
        head = f"{'Tracker':<{width}}  {'SR':>6}  {'PR':>6}  {'NPR':>6}" + (f"  {'FPS':>7}" if with_fps else "")
        lines = [head, "-" * len(head)]
        for name, tr in self.trackers.items():
            o = tr.overall
            row = f"{name:<{width}}  {o.SR:6.1f}  {o.PR:6.1f}  {o.NPR:6.1f}"
            if with_fps:
                row += f"  {tr.fps:7.1f}" if tr.fps is not None else f"  {'-':>7}"
            lines.append(row)
        return "\n".join(lines)

    def attribute_table(self) -> str:
        """One row per attribute code: number of sequences and SR/PR/NPR of every tracker; '' if none."""
        codes = self.attribute_codes
        if not codes:
            return ""
        names = list(self.trackers)
        col = max([14] + [len(n) for n in names])
        head = f"{'Attribute':<10} {'seqs':>4}  " + "  ".join(f"{n:>{col}}" for n in names)
        lines = [head, f"{'':<10} {'':>4}  " + "  ".join(f"{'SR/PR/NPR':>{col}}" for _ in names), "-" * len(head)]
        for code in codes:
            n = sum(code in gt.attributes for gt in self.ground_truth)
            cells = []
            for name in names:
                a = self.trackers[name].attributes[code]
                cells.append(f"{f'{a.SR:.1f}/{a.PR:.1f}/{a.NPR:.1f}':>{col}}")
            lines.append(f"{code:<10} {n:>4}  " + "  ".join(cells))
        return "\n".join(lines)


def _tracker_names(results: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    if names:
        if len(names) != len(results):
            raise ConfigError(f"--names: {len(names)} names for {len(results)} results folders")
        out = list(names)
    else:
        out = [p.name or str(p) for p in results]
    if len(set(out)) != len(out):
        raise ConfigError(
            f"tracker names must differ: {out} (name them: `evaluate --names`, or NAME= in `report --run NAME=DIR`)"
        )
    return out


def _evaluate_one(
    protocol: Protocol, gt: GroundTruth, result_path: Path, notes: list[str], tracker: str
) -> SequenceCurves:
    pred = read_boxes(result_path)
    try:
        curves = sequence_curves(protocol, pred, gt.boxes, gt.absent)
    except InvalidPrediction as exc:
        if protocol.name == "eventvot" and len(pred) < gt.length:
            raise DataFormatError(
                result_path, "line count", f"{len(pred)} lines for {gt.length} frames of sequence {gt.name} "
                "(the EventVOT protocol needs one line per frame)"
            ) from None
        raise DataFormatError(
            result_path, f"line {exc.rows[0] + 1}", f"{exc.problem}; lines {_lines_text(exc.rows)}"
        ) from None
    except ValueError as exc:
        raise DataFormatError(gt.source, "ground truth", str(exc)) from None
    if curves.length_note:
        notes.append(f"{tracker}: {result_path}: {curves.length_note}")
    for what, rows, where in (("prediction", pred, result_path), ("ground-truth", gt.boxes, gt.source)):
        inf_rows = np.flatnonzero(np.isinf(np.asarray(rows, dtype=np.float64)).any(axis=1)) if len(rows) else []
        if len(inf_rows):
            notes.append(
                f"{tracker}: {where}: {len(inf_rows)} {what} rows with infinite values (scored as failures): "
                f"lines {_lines_text(np.asarray(inf_rows))}"
            )
    if curves.repaired_rows.size:
        rule = "NaN, w<=0 or h<=0" if protocol.name == "eventvot" else "w==0 or h==0"
        notes.append(
            f"{tracker}: {result_path}: {len(curves.repaired_rows)} rows ({rule}) replaced by the previous row: "
            f"lines {_lines_text(curves.repaired_rows)}"
        )
    if curves.failed_rows.size:
        notes.append(
            f"{tracker}: {result_path}: {len(curves.failed_rows)} rows with some NaN values count as failures: "
            f"lines {_lines_text(curves.failed_rows)}"
        )
    return curves


def evaluate_trackers(
    dataset: str | Path,
    results: Sequence[str | Path],
    names: Sequence[str] | None = None,
    protocol: str = "eventvot",
    split: str | None = None,
    allow_missing: bool = False,
    ground_truth: list[GroundTruth] | None = None,
) -> EvaluationResult:
    """SR/PR/NPR of every results folder on the sequences of ``dataset`` (native or EventVOT layout).

    ``ground_truth`` may be passed pre-loaded (then ``dataset`` is only a label). A missing result file
    raises :class:`DataFormatError` unless ``allow_missing``: then the sequence counts as all-failed and
    a note says so.
    """
    proto = get_protocol(protocol)
    gts = ground_truth if ground_truth is not None else load_ground_truth(dataset, split)
    dirs = [Path(r) for r in results]
    if not dirs:
        raise ConfigError("no results folder given")
    labels = _tracker_names(dirs, names)
    codes = sorted({a for gt in gts for a in gt.attributes})
    notes: list[str] = []
    trackers: dict[str, TrackerResult] = {}
    for label, folder in zip(labels, dirs):
        if not folder.is_dir():
            raise DataFormatError(folder, None, "results folder not found")
        missing = [gt.name for gt in gts if not (folder / f"{gt.name}.txt").is_file()]
        if missing and not allow_missing:
            raise DataFormatError(
                folder / f"{missing[0]}.txt", None,
                f"result file missing ({len(missing)} of {len(gts)} sequences have none: "
                f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                "--allow-missing counts them as all-failed",
            )
        if missing:
            notes.append(
                f"{label}: {len(missing)} sequences without a result file counted as all-failed: "
                f"{', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}"
            )
        per_seq: dict[str, SequenceCurves] = {}
        total_time, timed_frames, timed_seqs = 0.0, 0, 0
        missing_set = set(missing)
        for gt in gts:
            if gt.name in missing_set:
                per_seq[gt.name] = failed_curves(proto, gt.length)
                continue
            per_seq[gt.name] = _evaluate_one(proto, gt, folder / f"{gt.name}.txt", notes, label)
            time_path = folder / f"{gt.name}{TIME_SUFFIX}"
            if time_path.is_file():
                times = read_times(time_path)
                if len(times) != gt.length:
                    notes.append(f"{label}: {time_path}: {len(times)} times for {gt.length} frames")
                total_time += float(times.sum())
                timed_frames += len(times)
                timed_seqs += 1
        fps = timed_frames / total_time if timed_seqs and total_time > 0 else None
        if fps is not None and timed_seqs < len(gts) - len(missing):
            notes.append(f"{label}: FPS from the {timed_seqs} sequences that have {TIME_SUFFIX} files")
        items = [per_seq[gt.name] for gt in gts]
        overall = aggregate(proto, items)
        if proto.skip_zero_curves:
            skipped = len(items) - overall.counted["SR"]
            if skipped:
                notes.append(
                    f"{label}: {skipped} sequences with an all-zero success curve left out of SR (EventVOT rule)"
                )
        attrs = {
            code: aggregate(proto, [per_seq[gt.name] for gt in gts if code in gt.attributes]) for code in codes
        }
        trackers[label] = TrackerResult(label, str(folder), overall, per_seq, attrs, fps, missing)
    return EvaluationResult(proto, str(dataset), split, gts, trackers, notes)
