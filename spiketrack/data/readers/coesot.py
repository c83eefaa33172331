"""COESOT (Tang et al., "Revisiting Color-Event based Tracking: A Unified Network, Dataset, and Metric").

Facts (github.com/Event-AHU/COESOT README and ``COESOT_eval_toolkit``): 1354 DAVIS346 sequences (827 training,
527/528 testing) in folders ``dvSave-YYYY_MM_DD_hh_mm_ss/`` holding ``<seq>_aps/`` (APS frames
``frame0000.bmp``...), ``<seq>_dvs/`` (event images), ``<seq>.aedat4``, ``groundtruth.txt`` (x,y,w,h,
comma-separated), ``absent.txt`` (**1 = present**: the toolkit evaluates ``1 - absent``, as EventVOT's copy of
it does) and ``start_end_index.txt`` (read here as the first and last annotated APS frame index when the
recording holds more frames than boxes — an interpretation, checked against the box count). 17 attributes,
same codes as VisEvent (toolkit ``annos/att/<seq>.txt``, one 0/1 per line).
"""

from __future__ import annotations

from pathlib import Path

from spiketrack.data.readers.attributes import COESOT_ATTRIBUTES
from spiketrack.data.readers.common import AbsentConvention
from spiketrack.data.readers.davis import DavisLayout, DavisSequence, open_davis_sequence

LAYOUT = DavisLayout(
    name="coesot",
    events=("{seq}.aedat4", "*.aedat4"),
    groundtruth=("groundtruth.txt",),
    absent=(("absent.txt", AbsentConvention.ONE_MEANS_PRESENT),),
    frame_dirs=("{seq}_aps", "{seq}_dvs"),
    attribute_codes=COESOT_ATTRIBUTES,
)


def open_coesot_sequence(folder: str | Path, **kwargs) -> DavisSequence:
    """One COESOT sequence folder, read in place (see :func:`open_davis_sequence` for keywords)."""
    return open_davis_sequence(folder, LAYOUT, **kwargs)
