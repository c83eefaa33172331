"""FE108 (Zhang et al., "Object Tracking by Jointly Exploiting Frame and Event Domain", ICCV 2021).

Facts (project page zhangjiqing.com/dataset, github.com/Jee-King/ICCV2021_Event_Frame_Tracking, and the
loaders of github.com/Event-AHU/COESOT ``CEUTrack/lib/test/evaluation/fe108dataset.py``): 108 sequences from a
DAVIS346 (346 x 260 DVS + APS), 21 object classes, boxes from a Vicon system; APS frames at 20/40 FPS are the
annotated frames. A sequence folder holds ``events.aedat4``, ``img/`` (APS frames) and
``groundtruth_rect.txt`` (x,y,w,h, comma-separated). There is no visibility file: a frame is absent when its
box is empty (w <= 0 or h <= 0), the rule of the public loaders (``valid = (w > 0) & (h > 0)``). Copies
re-packed for CEUTrack/AMTTrack use ``aps/``, ``dvs/`` and ``voxel/`` instead of ``img/``; both are accepted.
"""

from __future__ import annotations

from pathlib import Path

from spiketrack.data.readers.davis import DavisLayout, DavisSequence, open_davis_sequence

LAYOUT = DavisLayout(
    name="fe108",
    events=("events.aedat4", "{seq}.aedat4", "*.aedat4"),
    groundtruth=("groundtruth_rect.txt", "groundtruth.txt"),
    absent=(),
    frame_dirs=("img", "aps"),
)


def open_fe108_sequence(folder: str | Path, **kwargs) -> DavisSequence:
    """One FE108 sequence folder, read in place (see :func:`open_davis_sequence` for keywords)."""
    return open_davis_sequence(folder, LAYOUT, **kwargs)
