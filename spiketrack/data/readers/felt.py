"""FELT (Wang et al., "Long-Term Visual Object Tracking with Event Cameras: An Associative Memory Augmented
Tracker and A Benchmark Dataset", arXiv:2403.05839).

Facts (github.com/Event-AHU/FELT_SOT_Benchmark README and ``AMTTrack/lib/{train,test}`` loaders): 1,044
long-term frame-event videos, 60 target classes, 14 attributes. Sequence folders follow the COESOT layout:
``<seq>_aps/`` (``frame0000.png``/``.bmp``), ``<seq>_dvs/``, ``<seq>.aedat4``, ``groundtruth.txt``
(comma-separated x,y,w,h) and ``absent.txt``. The FELT release does not document ``absent.txt``'s meaning; it is
read like its sibling COESOT (**1 = present**) and checked against the boxes (``--absent-means`` overrides).
The 14 attribute codes are not published in the repository, so an attribute table for FELT needs a header row.
"""

from __future__ import annotations

from pathlib import Path

from spiketrack.data.readers.common import AbsentConvention
from spiketrack.data.readers.davis import DavisLayout, DavisSequence, open_davis_sequence

LAYOUT = DavisLayout(
    name="felt",
    events=("{seq}.aedat4", "*.aedat4"),
    groundtruth=("groundtruth.txt",),
    absent=(("absent.txt", AbsentConvention.ONE_MEANS_PRESENT),),
    frame_dirs=("{seq}_aps", "{seq}_dvs"),
)


def open_felt_sequence(folder: str | Path, **kwargs) -> DavisSequence:
    """One FELT sequence folder, read in place (see :func:`open_davis_sequence` for keywords)."""
    return open_davis_sequence(folder, LAYOUT, **kwargs)
