"""EventVOT attribute codes of a synthetic sequence, computed from what the renderer actually produced.

The 14 codes are EventVOT's (Wang et al., "Event Stream-based Visual Object Tracking: A High-Resolution
Benchmark Dataset and A Novel Baseline", CVPR 2024). Each code is assigned by a measurable rule on the rendered
ground truth (never from what the scene sampler intended), so it describes the sequence as generated:

====  ===========================  ============================================================================
Code  Meaning                      Rule (image pixels; W x H sensor, D = sqrt(W^2 + H^2), per-frame = 1/fps)
====  ===========================  ============================================================================
CM    camera motion                mean per-frame background displacement >= CM_MIN_PX (the background moves and
                                   makes events everywhere)
DEF   deformation                  the target's shape aspect (w/h of the unclipped shape) departs from frame 0's
                                   by a factor > DEF_ASPECT_RATIO in some frame
MOC   mild occlusion               largest occluded share of the in-view target in [MOC_MIN, HOC_MIN)
HOC   heavy occlusion              largest occluded share in [HOC_MIN, 1) with no full occlusion
FOC   full occlusion               some frame has the target in view (>= FOC_MIN_INSIDE of its area) but visible
                                   <= ABSENT_VISIBLE of its area, i.e. absent because covered (MOC/HOC/FOC are
                                   exclusive: the strongest level reached)
LI    low illumination             mean rendered intensity (linear, [0, 1]) < LI_MAX_MEAN
OV    out of view                  some frame has >= OV_MIN_OUTSIDE of the target's area outside the image
FM    fast motion                  some per-frame centre displacement (both frames present) > FM_FRACTION * D
BC    background clutter           target-like texture patches cover >= BC_MIN_COVER of the background
NM    no motion                    mean per-frame centre displacement < NM_MAX_PX (target static relative to the
                                   camera, so it makes few events)
BOM   background object motion     another, unlike object moving >= BOM_MIN_PX per frame on average is in view
                                   in >= PRESENT_MIN of the frames
SIO   similar interfering objects  a look-alike (target's texture, size ratio in [1/1.5, 1.5]) is in view in
                                   >= PRESENT_MIN of the frames
SV    scale variation              box area (unclipped shape) departs from frame 0's by a factor > SV_AREA_RATIO
ST    small target                 median sqrt(w*h) of the present boxes < ST_FRACTION * sqrt(W*H)
====  ===========================  ============================================================================

Multi-object scenes (:mod:`spiketrack.data.synth_multi`) add codes of their own, not EventVOT's:

====  ===========================  ============================================================================
MO    multi-object scene           2-4 annotated objects of the target's size class cross and pass near each
                                   other; the sequence's target is one of them (see :data:`EXTENSION_CODES`)
LA    look-alike objects           an MO scene whose objects share the target's texture and shape (+-10 % tint):
                                   only motion tells them apart, a template cannot
DA    distinct-appearance objects  an MO scene whose objects differ in texture, shape and brightness: appearance
                                   decides which one the template shows (where template following is measured)
====  ===========================  ============================================================================

A frame is *absent* when the visible share of the target's area is below ABSENT_VISIBLE (fully occluded or out of
view); its box is 0,0,0,0. Otherwise the box is the target's full extent clipped to the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATTRIBUTE_CODES = ("CM", "DEF", "MOC", "HOC", "FOC", "LI", "OV", "FM", "BC", "NM", "BOM", "SIO", "SV", "ST")
MULTI_OBJECT = "MO"  # spiketrack's own code: a multi-object scene (not one of EventVOT's 14)
LOOKALIKE_OBJECTS = "LA"  # ... whose objects look like the target
DISTINCT_OBJECTS = "DA"  # ... whose objects look different from each other
EXTENSION_CODES = (MULTI_OBJECT, LOOKALIKE_OBJECTS, DISTINCT_OBJECTS)

ABSENT_VISIBLE = 0.1
CM_MIN_PX = 0.5
DEF_ASPECT_RATIO = 1.3
MOC_MIN = 0.15
HOC_MIN = 0.5
FOC_MIN_INSIDE = 0.5
LI_MAX_MEAN = 0.12
OV_MIN_OUTSIDE = 0.5
FM_FRACTION = 0.04  # 17 px per frame at 346x260
BC_MIN_COVER = 0.1
NM_MAX_PX = 0.5
BOM_MIN_PX = 0.5
PRESENT_MIN = 0.25
SV_AREA_RATIO = 2.0
ST_FRACTION = 0.06  # 18 px at 346x260


@dataclass
class SequenceTruth:
    """Per-frame measurements of one rendered sequence (arrays over the F annotation frames)."""

    width: int
    height: int
    centres: np.ndarray  # float [F, 2] unclipped target centre
    sizes: np.ndarray  # float [F, 2] unclipped target w, h
    visible: np.ndarray  # float [F] visible share of the target's area
    inside: np.ndarray  # float [F] share of the target's area inside the image
    occluded: np.ndarray  # float [F] occluded share of the in-image part
    camera: np.ndarray  # float [F, 2] camera offset
    mean_intensity: float
    clutter_cover: float
    lookalike_present: np.ndarray  # bool [F] a look-alike is in view
    mover_present: np.ndarray  # bool [F] a moving unlike object is in view
    mover_speed: float  # mean per-frame displacement of the fastest unlike mover

    @property
    def absent(self) -> np.ndarray:
        return self.visible < ABSENT_VISIBLE

    def boxes(self) -> np.ndarray:
        """float32 [F, 4] x, y, w, h: full extent clipped to the image; 0,0,0,0 where absent."""
        return clipped_boxes(self.centres, self.sizes, self.absent, self.width, self.height)


def clipped_boxes(centres: np.ndarray, sizes: np.ndarray, absent: np.ndarray, width: int, height: int) -> np.ndarray:
    """float32 [F, 4] x, y, w, h of shapes with centres/sizes [F, 2], clipped to the image; 0,0,0,0 where absent."""
    x0 = np.clip(centres[:, 0] - sizes[:, 0] / 2, 0, width)
    y0 = np.clip(centres[:, 1] - sizes[:, 1] / 2, 0, height)
    x1 = np.clip(centres[:, 0] + sizes[:, 0] / 2, 0, width)
    y1 = np.clip(centres[:, 1] + sizes[:, 1] / 2, 0, height)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)
    boxes[absent] = 0.0
    return boxes


def assign_attributes(truth: SequenceTruth) -> list[str]:
    """The attribute codes whose rule (module docstring) holds, in :data:`ATTRIBUTE_CODES` order."""
    present = ~truth.absent
    codes: set[str] = set()
    cam_step = np.linalg.norm(np.diff(truth.camera, axis=0), axis=1)
    if cam_step.size and cam_step.mean() >= CM_MIN_PX:
        codes.add("CM")
    aspect = truth.sizes[:, 0] / np.maximum(truth.sizes[:, 1], 1e-6)
    if np.max(np.abs(np.log(aspect / aspect[0]))) > np.log(DEF_ASPECT_RATIO):
        codes.add("DEF")
    full_occ = (truth.inside >= FOC_MIN_INSIDE) & (truth.visible < ABSENT_VISIBLE)
    occ = truth.occluded[truth.inside > 0]
    max_occ = float(occ.max()) if occ.size else 0.0
    if full_occ.any():
        codes.add("FOC")
    elif max_occ >= HOC_MIN:
        codes.add("HOC")
    elif max_occ >= MOC_MIN:
        codes.add("MOC")
    if truth.mean_intensity < LI_MAX_MEAN:
        codes.add("LI")
    if np.any(1.0 - truth.inside >= OV_MIN_OUTSIDE):
        codes.add("OV")
    both = present[1:] & present[:-1]
    steps = np.linalg.norm(np.diff(truth.centres, axis=0), axis=1)[both]
    diag = float(np.hypot(truth.width, truth.height))
    if steps.size and steps.max() > FM_FRACTION * diag:
        codes.add("FM")
    if truth.clutter_cover >= BC_MIN_COVER:
        codes.add("BC")
    if steps.size and steps.mean() < NM_MAX_PX:
        codes.add("NM")
    if truth.mover_speed >= BOM_MIN_PX and truth.mover_present.mean() >= PRESENT_MIN:
        codes.add("BOM")
    if truth.lookalike_present.mean() >= PRESENT_MIN:
        codes.add("SIO")
    area = truth.sizes[:, 0] * truth.sizes[:, 1]
    if np.max(np.abs(np.log(area / area[0]))) > np.log(SV_AREA_RATIO):
        codes.add("SV")
    boxes = truth.boxes()[present]
    if boxes.size and np.median(np.sqrt(boxes[:, 2] * boxes[:, 3])) < ST_FRACTION * np.sqrt(truth.width * truth.height):
        codes.add("ST")
    return [c for c in ATTRIBUTE_CODES if c in codes]
