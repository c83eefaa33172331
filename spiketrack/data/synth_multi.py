"""Multi-object scenes of the synthetic benchmark: 2-4 annotated objects of the target's size class.

A tracker trained on single-object scenes can score well by boxing "the salient moving thing" and ignoring its
template (docs/tracking.md, "Template-dependence probe"). Multi-object scenes make the template necessary: 1-3 extra
objects, each with its own texture, shape and polarity pattern (or, as the harder option, the target's own
texture and shape: same-looking distractors), move *relative to the target* so that they cross it and pass
near it. Every object is annotated (boxes and absent flags by the renderer's exact geometry and owner map),
so any of them can be the target of a training pair, and in the test split each object in turn is the target
of its own sequence.

Motion: an object's centre path is the target's path plus a sinusoidal relative offset whose x amplitude is
larger than the two half-widths, so the offset goes through zero (a crossing) at least once a period; its
phase puts the object beside the target at the first annotation frame. The offsets are redrawn (up to
:data:`PLACEMENT_TRIES` times) until the object's first box overlaps neither the target's nor an earlier object's
(with a gap of :data:`PLACEMENT_GAP` of the target's size) and lies inside the image, so the first frame shows
every object whole and apart: a template cut there shows one object, not parts of two. Objects are drawn behind
or in front of the target at random (crossings occlude either one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spiketrack.data.synth_render import LUMA, Motion, Scene, Sprite
from spiketrack.data.textures import random_texture

MIN_OBJECTS, MAX_OBJECTS = 2, 4  # objects per multi-object scene, the target included
PLACEMENT_TRIES = 12  # draws of an object's relative motion until its first box is apart from the others
PLACEMENT_GAP = 0.1  # gap between first boxes, as a share of the target's mean side


@dataclass(frozen=True)
class MultiObjectPlan:
    """Whether a sequence is a multi-object scene: ``extra`` objects besides the target, ``lookalike`` or not."""

    extra: int = 0
    lookalike: bool = False

    @property
    def enabled(self) -> bool:
        return self.extra > 0


SCENE_KINDS = ("single", "distinct", "lookalike")


def draw_plan(rng: np.random.Generator, share: float, lookalike_share: float) -> MultiObjectPlan:
    """A multi-object scene with probability ``share``: 1-3 extra objects, look-alikes with ``lookalike_share``."""
    if share <= 0 or rng.random() >= share:
        return MultiObjectPlan()
    extra = int(rng.integers(MIN_OBJECTS - 1, MAX_OBJECTS))
    return MultiObjectPlan(extra, bool(rng.random() < lookalike_share))


def stratified_kinds(n: int, share: float, lookalike_share: float, rng: np.random.Generator) -> list[str]:
    """Scene kinds of ``n`` scenes in exact shares: ``round(n * share)`` multi-object scenes, of which
    ``round(n * share * lookalike_share)`` look-alike, the rest single-object; order by ``rng``'s permutation."""
    multi = int(round(n * share))
    lookalike = min(multi, int(round(n * share * lookalike_share)))
    kinds = ["lookalike"] * lookalike + ["distinct"] * (multi - lookalike) + ["single"] * (n - multi)
    return [kinds[i] for i in rng.permutation(n)]


def plan_of_kind(rng: np.random.Generator, kind: str) -> MultiObjectPlan:
    """The plan of a scene of a given kind (:data:`SCENE_KINDS`): 1-3 extra objects for multi-object kinds."""
    if kind not in SCENE_KINDS:
        raise ValueError(f"scene kind must be one of {SCENE_KINDS}, got {kind!r}")
    if kind == "single":
        return MultiObjectPlan()
    return MultiObjectPlan(int(rng.integers(MIN_OBJECTS - 1, MAX_OBJECTS)), kind == "lookalike")


def _relative(rng: np.random.Generator, base: Motion, amp: float, offset: float, duration: float) -> Motion:
    """``base`` plus ``offset + amp * sin(2 pi f t + phi)`` with ``|sin(phi)|`` near 1 (apart at t = 0)."""
    f = rng.uniform(0.6, 1.6) / duration
    phi = (np.pi / 2 if rng.random() < 0.5 else -np.pi / 2) + rng.uniform(-0.3, 0.3)
    return Motion(base.c0 + offset, (*base.amps, amp), (*base.freqs, f), (*base.phases, phi))


def _contrasting(texture: np.ndarray, others: list[float], rng: np.random.Generator) -> np.ndarray:
    """Shift a texture's brightness so its mean differs from every mean in ``others`` by at least 0.12."""
    for _ in range(4):
        m = float((texture @ LUMA).mean())
        close = [o for o in others if abs(m - o) < 0.12]
        if not close:
            break
        direction = -1.0 if m > 0.5 else 1.0
        texture = np.clip(texture + direction * rng.uniform(0.15, 0.25), 0.0, 1.0).astype(np.float32)
    return texture


def _box(sprite: Sprite, t: float, cam: tuple[float, float]) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of ``sprite``'s box at time t."""
    cx, cy, w, h = sprite.geometry(t, cam)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _apart(box: tuple[float, ...], others: list[tuple[float, ...]], gap: float, width: int, height: int) -> bool:
    """``box`` lies inside the image and at least ``gap`` pixels from every box of ``others`` on some axis."""
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return False
    return all(x1 + gap <= o[0] or o[2] + gap <= x0 or y1 + gap <= o[1] or o[3] + gap <= y0 for o in others)


def add_objects(
    rng: np.random.Generator, scene: Scene, plan: MultiObjectPlan, duration: float, first_time: float = 0.0
) -> list[int]:
    """Insert ``plan.extra`` objects into ``scene`` (in place); returns the object layer indices, target first.

    Objects go right behind or right in front of the target, so look-alike and mover layers (behind the target)
    keep their indices; ``scene.target_index`` is updated. ``first_time``: the first annotation frame's time (s),
    where every object is placed apart from the others (see the module docstring).
    """
    target = scene.target
    w_t, h_t = target.w0, target.h0
    means = [float(target.gray.mean()), float(scene.background_gray.mean())]
    cam0 = scene.camera(first_time)
    placed = [_box(target, first_time, cam0)]
    gap = PLACEMENT_GAP * 0.5 * (w_t + h_t)
    sprites = []
    for _ in range(plan.extra):
        f = rng.uniform(0.75, 1.3)
        w, h = w_t * f, h_t * f
        if plan.lookalike:
            tint = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
            texture, shape, source = np.clip(target.texture * tint, 0.0, 1.0), target.shape, target.source
        else:
            tex_h, tex_w = int(np.clip(round(h * 1.5), 16, 160)), int(np.clip(round(w * 1.5), 16, 160))
            source, texture = random_texture(tex_h, tex_w, rng)
            texture = _contrasting(texture, means, rng)
            shape = "ellipse" if rng.random() < 0.5 else "rect"
            means.append(float((texture @ LUMA).mean()))
        for _ in range(PLACEMENT_TRIES):  # the last draw stays when none is apart (a crowded or small image)
            amp_x = (w_t + w) / 2 * rng.uniform(1.3, 2.2)  # > the two half-widths: the offset crosses zero
            cx = _relative(rng, target.cx, amp_x, rng.uniform(-0.3, 0.3) * w_t, duration)
            cy = _relative(rng, target.cy, (h_t + h) / 2 * rng.uniform(0.2, 1.6), rng.uniform(-0.5, 0.5) * h_t,
                           duration)
            sprite = Sprite("object", texture, shape, cx, cy, w, h, target.log_scale, source=source)
            box = _box(sprite, first_time, cam0)
            if _apart(box, placed, gap, scene.width, scene.height):
                break
        placed.append(box)
        sprites.append(sprite)
    layers = []
    for sprite in sprites:
        in_front = bool(rng.random() < 0.5)
        pos = scene.target_index + 1 if in_front else scene.target_index
        scene.layers.insert(pos, sprite)
        if not in_front:
            scene.target_index += 1
        layers.append(sprite)
    return [scene.target_index] + [next(i for i, layer in enumerate(scene.layers) if layer is s) for s in layers]


__all__ = ["MAX_OBJECTS", "MIN_OBJECTS", "SCENE_KINDS", "MultiObjectPlan", "add_objects", "draw_plan", "plan_of_kind",
           "stratified_kinds"]
