"""Ground truth for evaluation: boxes, absent flags and attributes of every sequence of a dataset.

Two layouts are read:

* a native dataset (folder of ``<name>.h5`` sequence files, docs/architecture.md, "Sequence files", plus
  ``train.txt``/``test.txt``):
  ``/absent`` uses 1 = target NOT visible;
* an EventVOT-style folder: one sub-folder per sequence with ``groundtruth.txt`` (x,y,w,h per line) and
  ``absent.txt`` where **1 = target present** (the EventVOT/LaSOT toolkit keeps frames with
  ``absent == 1``). A missing ``absent.txt`` means every frame is present. A split is chosen by
  ``<root>/<split>.txt`` (one name per line) or a sub-folder ``<root>/<split>/``.

Both are turned into :class:`GroundTruth` with ``absent`` True where the target is not visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spiketrack.data.dataset import read_split
from spiketrack.errors import DataFormatError
from spiketrack.evaluation.textfiles import read_boxes, read_flags

EVENTVOT_GT = "groundtruth.txt"
EVENTVOT_ABSENT = "absent.txt"  # EventVOT convention: 1 = present, 0 = absent


@dataclass
class GroundTruth:
    """One sequence's annotation: ``boxes`` float64 [L, 4], ``absent`` bool [L] (True = not visible)."""

    name: str
    boxes: np.ndarray
    absent: np.ndarray
    attributes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def length(self) -> int:
        return int(len(self.boxes))


def _read_native(root: Path, split: str | None) -> list[GroundTruth]:
    from spiketrack.data.dataset import SequenceDataset

    ds = SequenceDataset(root)
    out = []
    for name in ds.names(split):
        with ds.open(name) as seq:
            out.append(
                GroundTruth(
                    name=name,
                    boxes=np.asarray(seq.boxes, dtype=np.float64).reshape(-1, 4),
                    absent=np.asarray(seq.absent).astype(bool),
                    attributes=list(seq.attributes),
                    source=str(ds.path(name)),
                )
            )
    return out


def _eventvot_names(root: Path, split: str | None) -> tuple[Path, list[str]]:
    if split is None:
        return root, sorted(p.name for p in root.iterdir() if (p / EVENTVOT_GT).is_file())
    listing = root / f"{split}.txt"
    if listing.is_file():
        return root, read_split(listing)
    sub = root / split
    if sub.is_dir():
        return sub, sorted(p.name for p in sub.iterdir() if (p / EVENTVOT_GT).is_file())
    raise DataFormatError(root, "split", f"split {split!r}: neither {listing.name} nor folder {split}/ exists")


def read_eventvot_sequence(folder: str | Path) -> GroundTruth:
    """One EventVOT-style sequence folder (``groundtruth.txt`` + optional ``absent.txt``, 1 = present)."""
    folder = Path(folder)
    gt_path = folder / EVENTVOT_GT
    if not gt_path.is_file():
        raise DataFormatError(folder, EVENTVOT_GT, "ground-truth file not found")
    boxes = read_boxes(gt_path)
    absent_path = folder / EVENTVOT_ABSENT
    if absent_path.is_file():
        present = read_flags(absent_path)
        if len(present) != len(boxes):
            raise DataFormatError(
                absent_path, "line count", f"{len(present)} flags for {len(boxes)} ground-truth rows in {EVENTVOT_GT}"
            )
        absent = ~present
    else:
        absent = np.zeros(len(boxes), dtype=bool)
    if len(boxes) and (absent[0] or not (boxes[0, 2] > 0 and boxes[0, 3] > 0)):
        raise DataFormatError(gt_path, "line 1", f"the first frame's box must be visible with a positive width and "
                                                 f"height (it initialises the tracker), got {boxes[0].tolist()}"
                                                 f"{' (marked absent)' if absent[0] else ''}")
    return GroundTruth(name=folder.name, boxes=boxes, absent=absent, attributes=[], source=str(gt_path))


def load_ground_truth(root: str | Path, split: str | None = None) -> list[GroundTruth]:
    """Every sequence's ground truth of the dataset at ``root`` (native or EventVOT layout), in name order
    (or the order of the split list)."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    if any(root.glob("*.h5")):
        items = _read_native(root, split)
    else:
        base, names = _eventvot_names(root, split)
        items = [read_eventvot_sequence(base / n) for n in names]
    if not items:
        raise DataFormatError(
            root, split, "no sequences found (expected <name>.h5 files or sub-folders with groundtruth.txt)"
        )
    for gt in items:
        if gt.length == 0:
            raise DataFormatError(gt.source, "boxes", "sequence has no annotated frames")
    return items
