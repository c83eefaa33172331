"""VisEvent (Wang et al., "VisEvent: Reliable Object Tracking via Collaboration of Frame and Event Flows").

Facts (github.com/wangxiao5791509/VisEvent_SOT_Benchmark: README, ``scripts/read_aedat4.py``,
``scripts/load_dianwokeji_json_file.m``, ``utils/calc_seq_err_robust.m``, ``Evaluate_VisEvent_SOT_benchmark.m``):
820 DAVIS346 sequences (500 train / 320 test). A sequence folder holds ``vis_imgs/`` (APS frames, ``.bmp``),
``event_imgs/``, ``<seq>.aedat4`` (not every training sequence has one: the repository lists an
``aedat4_only`` training subset) and ``groundtruth.txt`` (x,y,w,h; 0,0,0,0 when the target is not annotated).
17 attributes (CM ROT DEF FOC LI OV POC VC SV BC MB ARC FM NMO IV OE BOM).

Visibility files — two conventions in one release:
- ``absent.txt`` as in the toolkit's ``annos/absent/<seq>.txt``: **1 = absent** (``calc_seq_err_robust.m``
  removes rows where ``absent_anno == 1``);
- the per-sequence ``absent_label.txt`` written by the authors' annotation script: **1 = present** (it writes 1
  next to every box it found and 0 next to each 0,0,0,0 row).
``absent.txt`` is used when present, else ``absent_label.txt``; both are checked against the boxes.
"""

from __future__ import annotations

from pathlib import Path

from spiketrack.data.readers.attributes import VISEVENT_ATTRIBUTES
from spiketrack.data.readers.common import AbsentConvention
from spiketrack.data.readers.davis import DavisLayout, DavisSequence, open_davis_sequence

LAYOUT = DavisLayout(
    name="visevent",
    events=("{seq}.aedat4", "*.aedat4"),
    groundtruth=("groundtruth.txt",),
    absent=(
        ("absent.txt", AbsentConvention.ONE_MEANS_ABSENT),
        ("absent_label.txt", AbsentConvention.ONE_MEANS_PRESENT),
    ),
    frame_dirs=("vis_imgs", "event_imgs"),
    attribute_codes=VISEVENT_ATTRIBUTES,
)


def open_visevent_sequence(folder: str | Path, **kwargs) -> DavisSequence:
    """One VisEvent sequence folder, read in place (see :func:`open_davis_sequence` for keywords)."""
    return open_davis_sequence(folder, LAYOUT, **kwargs)
