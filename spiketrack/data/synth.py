"""Synthetic event-tracking benchmark (the embedded default dataset): rendered scenes -> ESIM events -> sequence files.

Each sequence is sampled from a seed: a background (a scikit-image photograph or a procedural pattern, larger than
the image so the camera can pan over it), a textured target with smooth motion, scale and aspect change, and
optional challenges: camera motion, fast motion, a world-fixed occluder (partial or full), an out-of-view excursion,
low light (darker scene, more background-activity noise), look-alike distractors, unlike moving objects, and
target-like clutter baked into the background. Frames are rendered at a fixed annotation rate (``fps``) and, between
two annotation frames, at adaptive sub-frames (no sprite or background pixel moves more than ``subframe_px`` between
two sub-frames, after ESIM's adaptive sampling), and :class:`~spiketrack.data.esim.EventSimulator` turns the
intensity into events. Boxes come from the renderer; attribute codes are assigned from the rendered ground truth by
the rules of :mod:`spiketrack.data.synth_attributes`.

With ``SynthOptions.multi_object`` > 0 that share of the sequences are multi-object scenes
(:mod:`spiketrack.data.synth_multi`): every object is annotated in ``/objects`` (target at index 0) and the
sequences carry the attribute ``MO`` and ``LA`` (look-alike objects) or ``DA`` (distinct-appearance objects); in
the test split each other object is also the target of a sequence of its own, ``<name>_o<k>`` (the same events,
that object's boxes as ``/boxes``, the scene's name as ``scene``). The test split is stratified: of ``n`` test
scenes, ``round(n * multi_object)`` are multi-object and ``round(n * multi_object * lookalike_objects)`` of those
look-alike, assigned to scene indices by a seeded permutation (the training split draws each scene's kind). With
the default 0 no random number is drawn for it and the scenes are those of a single-object benchmark.

Every test sequence starts on a clean frame: its target is at least ``SynthOptions.first_frame_visible`` (0.9)
visible in frame 0 and no other object's box overlaps its box (:mod:`spiketrack.data.visibility`); ``test.txt``
lists only such sequences.

The generation is a pure function of ``(seed, split, index, size, frames, fps)``: the same seed gives byte-identical
event arrays. ``generate_benchmark`` skips sequences whose file already exists with the same generation signature,
so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from spiketrack.atomic import clean_stale_temps
from spiketrack.data import synth_attributes as attrs
from spiketrack.data.esim import EsimConfig, EventSimulator
from spiketrack.data.events import EventArray
from spiketrack.data.synth_multi import MultiObjectPlan, add_objects, draw_plan, plan_of_kind, stratified_kinds
from spiketrack.data.synth_render import LUMA, Motion, Scene, Sprite, render, render_annotated_objects
from spiketrack.data.textures import background_texture, random_texture, resize
from spiketrack.data.visibility import clean_frames
from spiketrack.errors import ConfigError
from spiketrack.outputs import prepare_output_dir
from spiketrack.workers import bound_initializer

GENERATOR_VERSION = 2  # 2: stratified test scenes, clean first frames, LA/DA codes, visibility datasets
SOURCE_PREFIX = "spiketrack-synth"

# Probability that a sequence is given each challenge (attributes are then measured, not copied from these).
CHALLENGE_PROB = {
    "camera_motion": 0.35,
    "fast_motion": 0.2,
    "scale": 0.3,
    "deform": 0.25,
    "occlusion": 0.3,
    "full_occlusion": 0.45,  # share of the occlusion sequences whose occluder can hide the whole target
    "out_of_view": 0.15,
    "low_light": 0.12,
    "lookalike": 0.25,
    "movers": 0.3,
    "clutter": 0.15,
    "no_motion": 0.05,
    "small": 0.15,
}


@dataclass(frozen=True)
class SynthOptions:
    """Rendering and sensor settings shared by all sequences of a benchmark."""

    fps: float = 25.0
    subframe_px: float = 1.5  # largest image motion between two simulator sub-frames
    min_subframes: int = 2
    max_subframes: int = 24
    esim: EsimConfig = field(default_factory=EsimConfig)
    noise_rate_hz: float = 0.05  # background activity per pixel in normal light
    low_light_noise_rate_hz: float = 1.0  # ... and in low light (DVS noise rises as light falls)
    hot_pixel_fraction: float = 5e-5
    rgb: bool = True
    multi_object: float = 0.0  # share of multi-object scenes (synth_multi); 0 = the single-object benchmark
    lookalike_objects: float = 0.3  # share of multi-object scenes whose other objects look like the target
    first_frame_visible: float = 0.9  # a test sequence's target is at least this visible in frame 0 (and apart)


@dataclass
class SynthSequence:
    """One generated sequence, ready for :func:`spiketrack.data.h5seq.save_sequence`."""

    name: str
    width: int
    height: int
    events: EventArray
    frame_times: np.ndarray
    boxes: np.ndarray
    absent: np.ndarray
    rgb: np.ndarray | None
    attributes: list[str]
    truth: attrs.SequenceTruth
    renders: int  # simulator sub-frames rendered
    # multi-object scenes only (None otherwise): every object, the target at index 0
    object_boxes: np.ndarray | None = None  # float32 [K, F, 4]
    object_absent: np.ndarray | None = None  # uint8 [K, F]
    object_attributes: list[list[str]] | None = None  # attribute codes with object k as the target
    object_layers: list[int] | None = None  # scene layer of object k
    visible: np.ndarray | None = None  # float32 [F] visible share of the target's area
    object_visible: np.ndarray | None = None  # float32 [K, F] ... of every object (multi-object scenes)
    rendered: Scene | None = field(default=None, repr=False)  # what was rendered (tests compare its geometry)
    scene: str | None = None  # the scene's name (object views of a test scene share it; None: its own name)


@dataclass
class SceneInfo:
    """What the sampler built, needed to measure the attributes."""

    lookalikes: list[int]
    movers: list[int]
    clutter_cover: float
    noise_rate_hz: float
    challenges: dict[str, bool]


# ----------------------------------------------------------------------------------------------------------------
# Scene sampling
# ----------------------------------------------------------------------------------------------------------------


def _path(
    rng: np.random.Generator, centre: float, free: float, speed_px_frame: float, fps: float, duration: float
) -> Motion:
    """Two-sinusoid path around ``centre`` staying within ``centre +- free``, peak speed about ``speed_px_frame``."""
    free = max(free, 0.0)
    a1 = free * rng.uniform(0.45, 0.85)
    a2 = (free - a1) * rng.uniform(0.2, 1.0)
    f1 = rng.uniform(0.5, 1.5) / duration
    f2 = rng.uniform(1.5, 3.5) / duration
    phases = (rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi))
    peak = 2 * np.pi * (a1 * f1 + a2 * f2)
    if peak > 1e-9:
        k = speed_px_frame * fps / peak
        f1, f2 = f1 * k, f2 * k
    return Motion(centre, (a1, a2), (f1, f2), phases)


def _excursion(rng: np.random.Generator, centre: float, reach: float, duration: float) -> Motion:
    """A path that starts at ``centre``, goes out to ``centre +- reach`` and comes back (out-of-view)."""
    t_peak = rng.uniform(0.3, 0.55) * duration
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return Motion(centre, (sign * reach,), (1.0 / (4.0 * t_peak),), (0.0,))


def _tint(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(texture * rng.uniform(0.85, 1.15, size=3).astype(np.float32), 0.0, 1.0)


def _ensure_contrast(texture: np.ndarray, background_mean: float, rng: np.random.Generator) -> np.ndarray:
    """Shift the target's brightness away from the background's so it stands out (unless it already does)."""
    m = float((texture @ LUMA).mean())
    if abs(m - background_mean) >= 0.15:
        return texture
    direction = -1.0 if background_mean > 0.5 else 1.0
    return np.clip(texture + direction * rng.uniform(0.2, 0.3), 0.0, 1.0).astype(np.float32)


def _stamp_clutter(
    background: np.ndarray, texture: np.ndarray, rng: np.random.Generator, cover_goal: float
) -> float:
    """Paste tinted, rescaled copies of the target texture into the background until ``cover_goal`` is covered."""
    hb, wb = background.shape[:2]
    covered = np.zeros((hb, wb), dtype=bool)
    th, tw = texture.shape[:2]
    for _ in range(400):
        if covered.mean() >= cover_goal:
            break
        f = rng.uniform(0.6, 1.4)
        h, w = max(4, int(th * f)), max(4, int(tw * f))
        if h >= hb or w >= wb:
            continue
        y, x = int(rng.integers(0, hb - h)), int(rng.integers(0, wb - w))
        background[y : y + h, x : x + w] = _tint(resize(texture, h, w), rng)
        covered[y : y + h, x : x + w] = True
    return float(covered.mean())


def sample_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    duration: float,
    options: SynthOptions,
    force: dict[str, bool] | None = None,
) -> tuple[Scene, SceneInfo]:
    """Draw one scene: challenges, background, target, occluder, distractors (see the module docstring).

    ``force`` overrides drawn challenges (keys of :data:`CHALLENGE_PROB`), e.g. for tests and ablations.
    """
    p = CHALLENGE_PROB
    ch = {k: bool(rng.random() < v) for k, v in p.items()}
    for key, value in (force or {}).items():
        if key not in ch:
            raise ConfigError(f"synth: unknown challenge {key!r}; expected one of {sorted(ch)}")
        ch[key] = bool(value)
    if ch["no_motion"]:
        ch.update(fast_motion=False, out_of_view=False, occlusion=False)
    if ch["out_of_view"]:
        ch["fast_motion"] = False
    m = float(min(width, height))
    res = float(np.hypot(width, height)) / float(np.hypot(346, 260))  # speeds scale with the sensor size
    fps = options.fps

    margin = int(0.12 * m) + 2 if ch["camera_motion"] else 2
    background = background_texture(height + 2 * margin + 2, width + 2 * margin + 2, rng)

    # Target size and shape changes.
    if ch["small"]:
        side = rng.uniform(0.035, 0.055) * m
    else:
        side = rng.uniform(0.1, 0.2) * m if ch["scale"] else rng.uniform(0.12, 0.3) * m
    aspect = float(np.exp(rng.uniform(-0.6, 0.6)))
    w0, h0 = side * np.sqrt(aspect), side / np.sqrt(aspect)
    a_s = rng.uniform(0.4, 0.6) if ch["scale"] else rng.uniform(0.0, 0.06)
    a_d = rng.uniform(0.3, 0.5) if ch["deform"] else rng.uniform(0.0, 0.05)
    log_scale = Motion(0.0, (a_s,), (rng.uniform(0.6, 1.4) / duration,), (rng.uniform(0, 2 * np.pi),))
    log_aspect = Motion(0.0, (a_d,), (rng.uniform(1.0, 3.0) / duration,), (rng.uniform(0, 2 * np.pi),))
    w_max = w0 * np.exp(a_s + a_d / 2)  # largest size the scale and aspect paths can reach
    h_max = h0 * np.exp(a_s + a_d / 2)
    shrink = min(1.0, 0.7 * width / w_max, 0.7 * height / h_max)  # leave room to move
    w0, h0, w_max, h_max = w0 * shrink, h0 * shrink, w_max * shrink, h_max * shrink

    tex_h = int(np.clip(round(h0 * 1.5), 16, 160))
    tex_w = int(np.clip(round(w0 * 1.5), 16, 160))
    source, texture = random_texture(tex_h, tex_w, rng)
    if not ch["clutter"]:
        texture = _ensure_contrast(texture, float((background @ LUMA).mean()), rng)
    shape = "ellipse" if rng.random() < 0.35 else "rect"

    # Target path (image coordinates).
    if ch["no_motion"]:
        speed = rng.uniform(0.0, 0.15)
    elif ch["fast_motion"]:
        speed = rng.uniform(22.0, 32.0) * res
    else:
        speed = rng.uniform(2.0, 7.0) * res
    free_x = (width - w_max) / 2.0 - 1.0
    free_y = (height - h_max) / 2.0 - 1.0
    cx = _path(rng, width / 2.0, free_x, speed * rng.uniform(0.6, 1.0), fps, duration)
    cy = _path(rng, height / 2.0, free_y, speed * rng.uniform(0.4, 0.9), fps, duration)
    if ch["out_of_view"]:
        if rng.random() < 0.6:
            cx = _excursion(rng, width / 2.0, (width + w_max) / 2.0 * rng.uniform(1.15, 1.4), duration)
        else:
            cy = _excursion(rng, height / 2.0, (height + h_max) / 2.0 * rng.uniform(1.15, 1.4), duration)
    # Keep the target's start inside: shift the path so its t=0 centre is inside the free range.
    cx = replace(cx, c0=cx.c0 - (cx(0.0) - np.clip(cx(0.0), w_max / 2, width - w_max / 2)))
    cy = replace(cy, c0=cy.c0 - (cy(0.0) - np.clip(cy(0.0), h_max / 2, height - h_max / 2)))
    target = Sprite("target", texture, shape, cx, cy, w0, h0, log_scale, log_aspect, source=source)

    # Camera.
    if ch["camera_motion"]:
        cam_speed = rng.uniform(1.5, 5.0) * res
        cam_x = _path(rng, 0.0, margin - 1.0, cam_speed * rng.uniform(0.7, 1.0), fps, duration)
        cam_y = _path(rng, 0.0, margin - 1.0, cam_speed * rng.uniform(0.2, 0.6), fps, duration)
    else:
        cam_x = cam_y = Motion(0.0)

    layers: list[Sprite] = []
    movers: list[int] = []
    lookalikes: list[int] = []
    if ch["movers"]:
        for _ in range(int(rng.integers(1, 4))):
            s = rng.uniform(0.08, 0.25) * m
            asp = float(np.exp(rng.uniform(-0.7, 0.7)))
            mw, mh = s * np.sqrt(asp), s / np.sqrt(asp)
            src, tex = random_texture(int(np.clip(mh, 16, 128)), int(np.clip(mw, 16, 128)), rng)
            v = rng.uniform(1.0, 5.0) * res
            mx = _path(rng, rng.uniform(0.2, 0.8) * width, 0.45 * width, v, fps, duration)
            my = _path(rng, rng.uniform(0.2, 0.8) * height, 0.45 * height, v * 0.6, fps, duration)
            movers.append(len(layers))
            layers.append(Sprite("mover", tex, "ellipse" if rng.random() < 0.5 else "rect", mx, my, mw, mh, source=src))
    if ch["lookalike"]:
        for _ in range(int(rng.integers(1, 3))):
            f = rng.uniform(0.8, 1.2)
            v = rng.uniform(1.5, 6.0) * res
            lx = _path(rng, rng.uniform(0.25, 0.75) * width, 0.4 * width, v, fps, duration)
            ly = _path(rng, rng.uniform(0.25, 0.75) * height, 0.4 * height, v * 0.6, fps, duration)
            lookalikes.append(len(layers))
            layers.append(
                Sprite("lookalike", _tint(texture, rng), shape, lx, ly, w0 * f, h0 * f, source=source)
            )
    target_index = len(layers)
    layers.append(target)

    if ch["occlusion"]:
        occluder = _make_occluder(rng, target, (cam_x, cam_y), duration, ch["full_occlusion"], w_max, h_max)
        if occluder is not None:
            layers.append(occluder)

    clutter_cover = 0.0
    if ch["clutter"]:
        clutter_cover = _stamp_clutter(background, texture, rng, rng.uniform(0.15, 0.3))

    gain = rng.uniform(0.1, 0.22) if ch["low_light"] else rng.uniform(0.7, 1.0)
    noise = options.low_light_noise_rate_hz if ch["low_light"] else options.noise_rate_hz
    scene = Scene(width, height, background, margin, cam_x, cam_y, layers, float(gain), target_index)
    return scene, SceneInfo(lookalikes, movers, clutter_cover, noise, ch)


def _make_occluder(
    rng: np.random.Generator,
    target: Sprite,
    cam: tuple[Motion, Motion],
    duration: float,
    full: bool,
    w_max: float,
    h_max: float,
) -> Sprite | None:
    """A world-fixed bar standing where the target will be at some time, not covering it at t = 0."""
    candidates = rng.permutation(np.linspace(0.25, 0.85, 13)) * duration
    for t_occ in candidates:
        t_occ = float(t_occ)
        c = (cam[0](t_occ), cam[1](t_occ))
        x, y, w, h = target.geometry(t_occ, c)
        dt = 1e-3
        x2, y2, _, _ = target.geometry(t_occ + dt, (cam[0](t_occ + dt), cam[1](t_occ + dt)))
        vertical = abs(x2 - x) >= abs(y2 - y)  # a pole across horizontal motion, a beam across vertical motion
        along, cross = (w_max, h_max) if vertical else (h_max, w_max)
        along_now = w if vertical else h
        if full:
            a = along * rng.uniform(1.4, 2.0)
        else:
            a = along_now * rng.uniform(0.25, 0.8)
        b = cross * rng.uniform(1.6, 2.6)
        ow, oh = (a, b) if vertical else (b, a)
        wx, wy = x + c[0], y + c[1]  # world position
        # Reject when the occluder already overlaps the target's first box.
        x0, y0, w0, h0 = target.geometry(0.0, (cam[0](0.0), cam[1](0.0)))
        ox0, oy0 = wx - cam[0](0.0), wy - cam[1](0.0)
        if abs(ox0 - x0) < (ow + w0) / 2 and abs(oy0 - y0) < (oh + h0) / 2:
            continue
        tex_h, tex_w = int(np.clip(oh / 2, 16, 128)), int(np.clip(ow / 2, 16, 128))
        src, tex = random_texture(tex_h, tex_w, rng, natural_prob=0.3)
        return Sprite("occluder", tex, "rect", Motion(wx), Motion(wy), ow, oh, world_fixed=True, source=src)
    return None


# ----------------------------------------------------------------------------------------------------------------
# Rendering a sequence
# ----------------------------------------------------------------------------------------------------------------


def _motion_between(scene: Scene, t0: float, t1: float) -> float:
    """An estimate of the largest image displacement (px) of any layer or the background over [t0, t1]."""
    ts = (t0, 0.5 * (t0 + t1), t1)
    cams = [scene.camera(t) for t in ts]
    best = sum(float(np.hypot(cams[i + 1][0] - cams[i][0], cams[i + 1][1] - cams[i][1])) for i in range(2))
    for sprite in scene.layers:
        g = [sprite.geometry(t, c) for t, c in zip(ts, cams, strict=True)]
        d = 0.0
        for i in range(2):
            d += float(np.hypot(g[i + 1][0] - g[i][0], g[i + 1][1] - g[i][1]))
            d += 0.5 * max(abs(g[i + 1][2] - g[i][2]), abs(g[i + 1][3] - g[i][3]))
        best = max(best, d)
    return best


def _in_view(sprite: Sprite, geom: tuple[float, float, float, float], width: int, height: int) -> bool:
    """At least half of the sprite's box is inside the image."""
    cx, cy, w, h = geom
    ix = max(0.0, min(cx + w / 2, width) - max(cx - w / 2, 0.0))
    iy = max(0.0, min(cy + h / 2, height) - max(cy - h / 2, 0.0))
    return ix * iy >= 0.5 * w * h


def render_sequence(
    name: str,
    width: int,
    height: int,
    num_frames: int,
    seed: np.random.SeedSequence | int,
    options: SynthOptions | None = None,
    force: dict[str, bool] | None = None,
    multi: MultiObjectPlan | None = None,
) -> SynthSequence:
    """Sample, render and simulate one sequence (deterministic in ``seed``; ``force`` see :func:`sample_scene`).

    ``multi`` (enabled) adds its objects to the scene (:func:`spiketrack.data.synth_multi.add_objects`) and
    annotates every object.
    """
    options = options or SynthOptions()
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    scene_ss, sim_ss, noise_ss = ss.spawn(3)
    period_us = int(round(1e6 / options.fps))
    duration = num_frames * period_us * 1e-6
    scene, info = sample_scene(np.random.default_rng(scene_ss), width, height, duration, options, force)
    objects = [scene.target_index]
    if multi is not None and multi.enabled:
        (objects_ss,) = ss.spawn(1)
        objects = add_objects(np.random.default_rng(objects_ss), scene, multi, duration, first_time=period_us * 1e-6)
    esim_cfg = replace(
        options.esim, noise_rate_hz=info.noise_rate_hz, hot_pixel_fraction=options.hot_pixel_fraction
    )
    sim = EventSimulator(width, height, esim_cfg, np.random.default_rng(sim_ss))
    image_noise = np.random.default_rng(noise_ss)
    gain = np.float32(scene.gain)
    low_light = info.challenges["low_light"]

    sim.reset(render(scene, 0.0) * gain, 0)
    parts: list[EventArray] = []
    frame_times = (np.arange(num_frames, dtype=np.int64) + 1) * period_us
    rgb_frames = np.zeros((num_frames, height, width, 3), np.uint8) if options.rgb else None
    n_obj = len(objects)
    centres, sizes = np.zeros((n_obj, num_frames, 2)), np.zeros((n_obj, num_frames, 2))
    visible, inside, occluded = np.zeros((n_obj, num_frames)), np.zeros((n_obj, num_frames)), np.zeros((n_obj, num_frames))
    camera = np.zeros((num_frames, 2))
    lookalike_present = np.zeros(num_frames, bool)
    mover_present = np.zeros(num_frames, bool)
    mover_pos = np.zeros((len(info.movers), num_frames, 2))
    intensity_sum = 0.0
    renders = 0
    for k in range(num_frames):
        t_prev, t_next = k * period_us, (k + 1) * period_us
        steps = int(np.clip(np.ceil(_motion_between(scene, t_prev * 1e-6, t_next * 1e-6) / options.subframe_px),
                            options.min_subframes, options.max_subframes))
        for j in range(1, steps + 1):
            tj = t_prev + (period_us * j) // steps
            gray = render(scene, tj * 1e-6) * gain
            parts.append(sim.step(gray, tj))
            renders += 1
        intensity_sum += float(gray.mean())
        t = t_next * 1e-6
        rgb, states = render_annotated_objects(scene, t, objects)
        if rgb_frames is not None:
            rgb *= gain
            if low_light:
                rgb += image_noise.normal(0.0, 0.01, size=rgb.shape).astype(np.float32)
            rgb_frames[k] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        for i, state in enumerate(states):
            centres[i, k] = state.cx, state.cy
            sizes[i, k] = state.w, state.h
            visible[i, k], inside[i, k] = state.visible_fraction, state.inside_fraction
            occluded[i, k] = state.occluded_fraction
        cam = scene.camera(t)
        camera[k] = cam
        for i in info.lookalikes:
            lookalike_present[k] |= _in_view(scene.layers[i], scene.layers[i].geometry(t, cam), width, height)
        for n, i in enumerate(info.movers):
            g = scene.layers[i].geometry(t, cam)
            mover_pos[n, k] = g[:2]
            mover_present[k] |= _in_view(scene.layers[i], g, width, height)
    mover_speed = 0.0
    if info.movers and num_frames > 1:
        mover_speed = float(np.linalg.norm(np.diff(mover_pos, axis=1), axis=2).mean(axis=1).max())
    truths = [
        attrs.SequenceTruth(
            width, height, centres[i], sizes[i], visible[i], inside[i], occluded[i], camera,
            intensity_sum / num_frames, info.clutter_cover, lookalike_present, mover_present, mover_speed,
        )
        for i in range(n_obj)
    ]
    truth = truths[0]
    multi_fields: dict = {}
    scene_codes: list[str] = []
    if n_obj > 1:
        scene_codes = [attrs.MULTI_OBJECT, attrs.LOOKALIKE_OBJECTS if multi.lookalike else attrs.DISTINCT_OBJECTS]
        # look-alike/mover presence stays the scene's (measured against the sampled target) for every object
        multi_fields = dict(
            object_boxes=np.stack([tr.boxes() for tr in truths]),
            object_absent=np.stack([tr.absent for tr in truths]).astype(np.uint8),
            object_attributes=[attrs.assign_attributes(tr) + scene_codes for tr in truths],
            object_layers=list(objects),
            object_visible=np.clip(visible, 0.0, 1.0).astype(np.float32),
        )
    return SynthSequence(
        name=name,
        width=width,
        height=height,
        events=EventArray.concatenate(parts),
        frame_times=frame_times,
        boxes=truth.boxes(),
        absent=truth.absent.astype(np.uint8),
        rgb=rgb_frames,
        attributes=attrs.assign_attributes(truth) + scene_codes,
        truth=truth,
        visible=np.clip(visible[0], 0.0, 1.0).astype(np.float32),  # pixel count / analytic area
        renders=renders,
        rendered=scene,
        **multi_fields,
    )


# ----------------------------------------------------------------------------------------------------------------
# Benchmark folder
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceJob:
    """Everything needed to make one sequence file (picklable for worker processes)."""

    path: Path
    name: str
    split: str
    index: int
    seed: int
    width: int
    height: int
    frames: tuple[int, int]
    options: SynthOptions
    kind: str | None = None  # scene kind of a stratified test split (synth_multi.SCENE_KINDS); None: drawn

    @property
    def signature(self) -> str:
        """The generation parameters, stored as the file's ``source`` attribute (used to resume safely)."""
        o = self.options
        return (
            f"{SOURCE_PREFIX} v{GENERATOR_VERSION} seed={self.seed} split={self.split} index={self.index} "
            f"size={self.width}x{self.height} frames={self.frames[0]}:{self.frames[1]} fps={o.fps:g} "
            f"rgb={int(o.rgb)} C={o.esim.contrast_on:g}/{o.esim.contrast_off:g}"
            + (f" mo={o.multi_object:g}/{o.lookalike_objects:g}" if o.multi_object > 0 else "")
            + (f" kind={self.kind}" if self.kind is not None else "")
        )

    def seed_sequence(self) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, 0 if self.split == "train" else 1, self.index])

    def multi_object_plan(self) -> MultiObjectPlan:
        """Whether this sequence is a multi-object scene (its own seed; no draw when the share is 0)."""
        o = self.options
        if o.multi_object <= 0:
            return MultiObjectPlan()
        rng = np.random.default_rng([self.seed, 0 if self.split == "train" else 1, self.index, 7])
        if self.kind is not None:
            return plan_of_kind(rng, self.kind)
        return draw_plan(rng, o.multi_object, o.lookalike_objects)


@dataclass(frozen=True)
class JobResult:
    name: str
    frames: int
    events: int
    attributes: tuple[str, ...]
    seconds: float
    skipped: bool
    names: tuple[str, ...] = ()  # sequences the job lists in its split, in order (test: the clean ones only)
    kind: str | None = None  # scene kind of a stratified test scene


def test_sequence_names(
    name: str,
    boxes: np.ndarray,
    absent: np.ndarray,
    visible: np.ndarray | None,
    object_boxes: np.ndarray | None,
    object_absent: np.ndarray | None,
    object_visible: np.ndarray | None,
    min_visible: float,
) -> list[tuple[int, str]]:
    """The test sequences of one scene: ``(0, name)`` and ``(k, '<name>_o<k>')`` for every object k >= 1, each
    kept when its target is present in at least 2 frames and frame 0 is clean (at least ``min_visible`` visible, no
    other object's box overlapping its box; :func:`spiketrack.data.visibility.clean_frames`)."""
    if object_boxes is None:
        object_boxes, object_absent = boxes[None], absent[None]
        object_visible = None if visible is None else visible[None]
    out = []
    for k in range(len(object_boxes)):
        others = np.delete(object_boxes[:, :1], k, axis=0)
        vis = None if object_visible is None else object_visible[k, :1]
        clean = clean_frames(object_boxes[k, :1], object_absent[k, :1], vis, others, min_visible, 0.0)[0]
        if clean and int((object_absent[k] == 0).sum()) >= 2:
            out.append((k, name if k == 0 else f"{name}_o{k}"))
    return out


def _listing(seq: object, min_visible: float) -> list[tuple[int, str]]:
    """:func:`test_sequence_names` of a generated or opened scene file."""
    return test_sequence_names(seq.name, seq.boxes, seq.absent, seq.visible, seq.object_boxes, seq.object_absent,
                               seq.object_visible, min_visible)


def _done_names(job: SequenceJob) -> list[str] | None:
    """The names of the job's files when all exist with this job's signature, else None."""
    if not job.path.is_file():
        return None
    from spiketrack.data.h5seq import open_sequence
    from spiketrack.errors import SpiketrackError

    try:
        with open_sequence(job.path) as seq:
            if seq.source != job.signature:
                return None
            if job.split != "test":
                return [job.name]
            listed = _listing(seq, job.options.first_frame_visible)
        for k, name in listed:
            if k == 0:
                continue
            with open_sequence(job.path.with_name(f"{name}.h5")) as other:
                if other.source != job.signature:
                    return None
        return [name for _, name in listed]
    except (SpiketrackError, OSError):
        return None


def _already_done(job: SequenceJob) -> bool:
    return _done_names(job) is not None


def _object_views(seq: SynthSequence, listed: list[tuple[int, str]]) -> list[tuple[str, SynthSequence]]:
    """Test-split sequences of a multi-object scene with object k >= 1 of ``listed`` as the target (objects
    reordered, k first; ``scene`` is the scene's name)."""
    out = []
    for k, name in listed:
        if k == 0:
            continue
        order = [k] + [i for i in range(len(seq.object_boxes)) if i != k]
        view = replace(
            seq, name=name, boxes=seq.object_boxes[k], absent=seq.object_absent[k],
            attributes=seq.object_attributes[k], object_boxes=seq.object_boxes[order],
            object_absent=seq.object_absent[order], object_attributes=[seq.object_attributes[i] for i in order],
            object_layers=[seq.object_layers[i] for i in order], visible=seq.object_visible[k],
            object_visible=seq.object_visible[order], scene=seq.name,
        )
        out.append((name, view))
    return out


def _run_job(job: SequenceJob) -> JobResult:
    from spiketrack.data.h5seq import save_sequence

    done = _done_names(job)
    if done is not None:
        from spiketrack.data.h5seq import open_sequence

        with open_sequence(job.path) as seq:
            return JobResult(job.name, seq.num_frames, -1, tuple(seq.attributes), 0.0, True, tuple(done), job.kind)
    start = time.perf_counter()
    ss = job.seed_sequence()
    length_ss, render_ss = ss.spawn(2)
    lo, hi = job.frames
    num_frames = int(np.random.default_rng(length_ss).integers(lo, hi + 1))
    seq = render_sequence(job.name, job.width, job.height, num_frames, render_ss, job.options,
                          multi=job.multi_object_plan())
    listed = _listing(seq, job.options.first_frame_visible) if job.split == "test" else [(0, seq.name)]
    views = _object_views(seq, listed) if job.split == "test" and seq.object_boxes is not None else []
    for name, view in views:  # the primary file is written last: its presence marks the job finished
        save_sequence(job.path.with_name(f"{name}.h5"), view, rgb=view.rgb, source=job.signature)
    save_sequence(job.path, seq, rgb=seq.rgb, source=job.signature)
    names = tuple(name for _, name in listed)
    return JobResult(seq.name, num_frames, len(seq.events), tuple(seq.attributes), time.perf_counter() - start,
                     False, names, job.kind)


def sequence_names(split: str, count: int) -> list[str]:
    return [f"{split}_{i:04d}" for i in range(count)]


def generate_benchmark(
    out: str | Path,
    n_train: int,
    n_test: int,
    seed: int = 0,
    size: tuple[int, int] = (346, 260),
    frames: tuple[int, int] = (100, 300),
    options: SynthOptions | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[JobResult]:
    """Write ``n_train`` + ``n_test`` sequence files and ``train.txt``/``test.txt`` into ``out``.

    ``size`` is (width, height); ``frames`` the inclusive range of annotation frames per sequence (drawn per
    sequence from the seed). Existing files with the same generation signature are kept (resumable).
    A job that fails (e.g. a full disk) stops the run: queued jobs are dropped and no partial file is left.
    """
    from tqdm import tqdm

    from spiketrack.data.dataset import write_split

    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise ConfigError(f"synth: need a positive number of sequences, got train={n_train} test={n_test}")
    if frames[0] < 2 or frames[1] < frames[0]:
        raise ConfigError(f"synth: frames must be MIN:MAX with 2 <= MIN <= MAX, got {frames[0]}:{frames[1]}")
    width, height = size
    if width < 32 or height < 32:
        raise ConfigError(f"synth: size must be at least 32x32, got {width}x{height}")
    options = options or SynthOptions()
    for key in ("multi_object", "lookalike_objects"):
        if not 0.0 <= getattr(options, key) <= 1.0:
            raise ConfigError(f"synth: {key} must be a share in [0, 1], got {getattr(options, key)}")
    out = prepare_output_dir(out, "synth output folder")
    clean_stale_temps(out)
    kinds: list[str | None] = [None] * n_test
    if options.multi_object > 0 and n_test > 0:  # the test split's scene kinds in exact shares
        kinds = list(stratified_kinds(n_test, options.multi_object, options.lookalike_objects,
                                      np.random.default_rng([int(seed), 1, 8])))
    jobs = [
        SequenceJob(out / f"{name}.h5", name, split, i, int(seed), width, height, tuple(frames), options,
                    kinds[i] if split == "test" else None)
        for split, count in (("train", n_train), ("test", n_test))
        for i, name in enumerate(sequence_names(split, count))
    ]
    results: dict[str, JobResult] = {}
    bar = tqdm(total=len(jobs), desc="synth", unit="seq", disable=not progress)
    if workers <= 1:
        for job in jobs:
            results[job.name] = _run_job(job)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=bound_initializer, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_run_job, job) for job in jobs]
            try:
                for fut in as_completed(futures):
                    res = fut.result()
                    results[res.name] = res
                    bar.update()
            except BaseException:
                # one failed job (disk full, ...) stops the run: queued jobs are dropped, running ones finish
                # (each file is written atomically), then the error is reported
                pool.shutdown(wait=True, cancel_futures=True)
                bar.close()
                raise
    bar.close()
    for split in ("train", "test"):
        names = [n for job in jobs if job.split == split for n in results[job.name].names]
        write_split(out, split, names)
    return [results[job.name] for job in jobs]


# ----------------------------------------------------------------------------------------------------------------
# CLI (`spiketrack data synth`)
# ----------------------------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size: expected WIDTHxHEIGHT such as 346x260 or 1280x720, got {text!r}") from None
    if w < 32 or h < 32:
        raise ConfigError(f"--size: width and height must be >= 32, got {text!r}")
    return w, h


def parse_frames(text: str) -> tuple[int, int]:
    """``MIN:MAX`` (or a single number) -> (min, max)."""
    try:
        parts = [int(v) for v in text.split(":")]
    except ValueError:
        raise ConfigError(f"--frames: expected MIN:MAX such as 100:300, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or parts[0] < 2 or parts[1] < parts[0]:
        raise ConfigError(f"--frames: expected MIN:MAX with 2 <= MIN <= MAX, got {text!r}")
    return parts[0], parts[1]


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spiketrack data synth``."""
    parser.add_argument("--out", required=True, help="output folder (sequence files + train.txt/test.txt)")
    parser.add_argument("--train", type=int, default=8, help="number of training sequences (default 8)")
    parser.add_argument("--test", type=int, default=2, help="number of test sequences (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (same seed -> identical files)")
    parser.add_argument("--size", default="346x260", help="sensor WIDTHxHEIGHT: 346x260 (DAVIS346) or 1280x720")
    parser.add_argument("--frames", default="100:300", help="annotation frames per sequence, MIN:MAX (default 100:300)")
    parser.add_argument("--fps", type=float, default=25.0, help="annotation frame rate in Hz (default 25)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--no-rgb", action="store_true", help="do not store the rendered RGB frames")
    parser.add_argument(
        "--multi-object", type=float, default=0.0, metavar="SHARE",
        help="share of multi-object scenes (2-4 annotated objects crossing the target; test split: one sequence "
        "per object, attribute MO); default 0",
    )
    parser.add_argument(
        "--lookalike-objects", type=float, default=0.3, metavar="SHARE",
        help="share of the multi-object scenes whose other objects look like the target (default 0.3)",
    )


def run_synth(args: argparse.Namespace) -> int:
    """Generate the benchmark described by ``args``; prints a one-line summary."""
    size = parse_size(args.size)
    frames = parse_frames(args.frames)
    if args.fps <= 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    for flag, value in (("--multi-object", args.multi_object), ("--lookalike-objects", args.lookalike_objects)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{flag}: expected a share in [0, 1], got {value}")
    options = SynthOptions(fps=float(args.fps), rgb=not args.no_rgb, multi_object=float(args.multi_object),
                           lookalike_objects=float(args.lookalike_objects))
    workers = max(1, min(int(args.workers), os.cpu_count() or 1))
    start = time.perf_counter()
    results = generate_benchmark(args.out, args.train, args.test, args.seed, size, frames, options, workers)
    seconds = time.perf_counter() - start
    made = [r for r in results if not r.skipped]
    n_frames = sum(r.frames for r in made)
    strata = {kind: sum(len(r.names) for r in results if r.kind == kind) for kind in ("single", "distinct", "lookalike")}
    if any(r.kind for r in results):
        print(f"synth: test split of {sum(strata.values())} sequences: {strata['single']} single-object, "
              f"{strata['distinct']} multi-object distinct-appearance (DA), {strata['lookalike']} multi-object "
              "look-alike (LA); one per object whose first frame is clean")
    rate = f" in {seconds:.1f} s ({n_frames / seconds:.1f} frames/s)" if made and seconds > 0 else ""
    print(
        f"synth: {len(made)} sequences written, {len(results) - len(made)} kept, "
        f"{n_frames} frames{rate} -> {args.out}"
    )
    return 0
