"""Renderer of the synthetic benchmark: a panning background plus textured sprites, with exact target geometry.

A :class:`Scene` is a background texture larger than the image (the camera pans over it) and a back-to-front list
of :class:`Sprite` layers. Sprites are axis-aligned rectangles or ellipses with a texture resampled bilinearly to
their current size, anti-aliased edges (sub-pixel motion changes edge pixels smoothly, so simulated events are
well timed) and smooth analytic motion, so any time can be rendered. Rendering at an annotation frame also returns
the owner label of every pixel, from which the target's visible, occluded and out-of-view fractions are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights


@dataclass(frozen=True)
class Motion:
    """A smooth scalar path ``c0 + sum_i a_i sin(2 pi f_i t + phi_i)`` (t in seconds)."""

    c0: float = 0.0
    amps: tuple[float, ...] = ()
    freqs: tuple[float, ...] = ()
    phases: tuple[float, ...] = ()

    def __call__(self, t: float) -> float:
        v = self.c0
        for a, f, p in zip(self.amps, self.freqs, self.phases, strict=True):
            v += a * np.sin(2.0 * np.pi * f * t + p)
        return float(v)


@dataclass
class Sprite:
    """One textured object. ``role``: 'target', 'lookalike' (SIO distractor), 'mover' (BOM), 'occluder'.

    Size at time t: side scale ``exp(log_scale(t))`` and aspect ``exp(log_aspect(t))`` (w/h) applied to
    ``(w0, h0)``. ``world_fixed`` sprites are attached to the background and move with the camera.
    """

    role: str
    texture: np.ndarray  # float32 [th, tw, 3] in [0, 1]
    shape: str  # 'rect' | 'ellipse'
    cx: Motion
    cy: Motion
    w0: float
    h0: float
    log_scale: Motion = field(default_factory=Motion)
    log_aspect: Motion = field(default_factory=Motion)
    world_fixed: bool = False
    source: str = ""
    gray: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.texture = np.ascontiguousarray(self.texture, dtype=np.float32)
        self.gray = np.ascontiguousarray(self.texture @ LUMA)

    def geometry(self, t: float, cam: tuple[float, float]) -> tuple[float, float, float, float]:
        """Centre and size ``(cx, cy, w, h)`` in image pixels at time t for camera offset ``cam``."""
        s = np.exp(self.log_scale(t))
        a = np.exp(self.log_aspect(t))
        w, h = self.w0 * s * np.sqrt(a), self.h0 * s / np.sqrt(a)
        cx, cy = self.cx(t), self.cy(t)
        if self.world_fixed:
            cx, cy = cx - cam[0], cy - cam[1]
        return float(cx), float(cy), float(w), float(h)

    def full_area(self, w: float, h: float) -> float:
        return w * h * (np.pi / 4.0 if self.shape == "ellipse" else 1.0)


@dataclass
class Scene:
    """Background (float32 [Hb, Wb, 3], larger than the image by ``margin`` on each side) and sprite layers."""

    width: int
    height: int
    background: np.ndarray
    margin: int
    cam_x: Motion
    cam_y: Motion
    layers: list[Sprite]
    gain: float = 1.0  # scene illumination (low light < 1)
    target_index: int = 0
    background_gray: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.background = np.ascontiguousarray(self.background, dtype=np.float32)
        self.background_gray = np.ascontiguousarray(self.background @ LUMA)
        need = (self.height + 2 * self.margin + 1, self.width + 2 * self.margin + 1)
        if self.background.shape[0] < need[0] or self.background.shape[1] < need[1]:
            raise ValueError(f"background {self.background.shape[:2]} smaller than required {need}")

    @property
    def target(self) -> Sprite:
        return self.layers[self.target_index]

    def camera(self, t: float) -> tuple[float, float]:
        return self.cam_x(t), self.cam_y(t)


@dataclass(frozen=True)
class TargetState:
    """Exact target geometry at one annotation frame."""

    cx: float
    cy: float
    w: float
    h: float
    full_px: float  # area of the whole shape (inside or outside the image)
    inside_px: int  # shape pixels inside the image
    visible_px: int  # shape pixels inside the image and not covered by a nearer layer

    @property
    def visible_fraction(self) -> float:
        return self.visible_px / max(self.full_px, 1e-6)

    @property
    def inside_fraction(self) -> float:
        return min(1.0, self.inside_px / max(self.full_px, 1e-6))

    @property
    def occluded_fraction(self) -> float:
        """Share of the in-image part hidden by nearer layers (0 when nothing is inside)."""
        return 0.0 if self.inside_px == 0 else 1.0 - self.visible_px / self.inside_px


def _axis(lo: float, hi: float, n: int) -> tuple[int, np.ndarray] | None:
    """First pixel and per-pixel coverage of the interval [lo, hi) on an axis of n pixels (None if empty)."""
    a, b = max(0, int(np.floor(lo))), min(n, int(np.ceil(hi)))
    if b <= a:
        return None
    idx = np.arange(a, b, dtype=np.float32)
    return a, np.clip(np.minimum(idx + 1.0, hi) - np.maximum(idx, lo), 0.0, 1.0)


def _taps(lo: float, size: float, start: int, count: int, n_tex: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps (i0, i1, frac) into a texture axis of n_tex samples for `count` pixel centres."""
    u = (np.arange(start, start + count, dtype=np.float32) + 0.5 - lo) * (n_tex / size) - 0.5
    u = np.clip(u, 0.0, n_tex - 1.0)
    i0 = np.floor(u).astype(np.intp)
    return i0, np.minimum(i0 + 1, n_tex - 1), (u - i0).astype(np.float32)


def _sample(tex: np.ndarray, rows: tuple, cols: tuple) -> np.ndarray:
    """Separable bilinear resampling of tex ([th, tw] or [th, tw, C]) at the given taps -> [nr, nc(, C)]."""
    r0, r1, fr = rows
    c0, c1, fc = cols
    extra = (1,) * (tex.ndim - 2)
    fr = fr.reshape(-1, 1, *extra)
    fc = fc.reshape(1, -1, *extra)
    top = tex[np.ix_(r0, c0)] * (1 - fc) + tex[np.ix_(r0, c1)] * fc
    bot = tex[np.ix_(r1, c0)] * (1 - fc) + tex[np.ix_(r1, c1)] * fc
    return top * (1 - fr) + bot * fr


def draw_sprite(
    canvas: np.ndarray, sprite: Sprite, geom: tuple[float, float, float, float], rgb: bool
) -> tuple[int, int, np.ndarray] | None:
    """Alpha-blend ``sprite`` onto ``canvas`` ([H, W] gray or [H, W, 3]) in place.

    Returns ``(row0, col0, alpha)`` of the touched region, or None when the sprite is outside the image.
    """
    h_img, w_img = canvas.shape[:2]
    cx, cy, w, h = geom
    if w < 0.5 or h < 0.5:
        return None
    x0, y0 = cx - w / 2.0, cy - h / 2.0
    ax, ay = _axis(x0, x0 + w, w_img), _axis(y0, y0 + h, h_img)
    if ax is None or ay is None:
        return None
    (c_start, cov_x), (r_start, cov_y) = ax, ay
    if sprite.shape == "ellipse":
        px = (np.arange(c_start, c_start + cov_x.size, dtype=np.float32) + 0.5 - cx) / (w / 2.0)
        py = (np.arange(r_start, r_start + cov_y.size, dtype=np.float32) + 0.5 - cy) / (h / 2.0)
        r = np.sqrt(py[:, None] ** 2 + px[None, :] ** 2)
        alpha = np.clip((1.0 - r) * (0.5 * min(w, h)) + 0.5, 0.0, 1.0).astype(np.float32)
    else:
        alpha = cov_y[:, None] * cov_x[None, :]
    tex = sprite.texture if rgb else sprite.gray
    rows = _taps(y0, h, r_start, cov_y.size, tex.shape[0])
    cols = _taps(x0, w, c_start, cov_x.size, tex.shape[1])
    patch = _sample(tex, rows, cols)
    region = canvas[r_start : r_start + cov_y.size, c_start : c_start + cov_x.size]
    a = alpha[..., None] if rgb else alpha
    region += (patch - region) * a
    return r_start, c_start, alpha


def background_view(scene: Scene, cam: tuple[float, float], rgb: bool) -> np.ndarray:
    """The image-sized window of the background at camera offset ``cam`` (bilinear for sub-pixel offsets)."""
    bg = scene.background if rgb else scene.background_gray
    ox, oy = scene.margin + cam[0], scene.margin + cam[1]
    ix, iy = int(np.floor(ox)), int(np.floor(oy))
    fx, fy = np.float32(ox - ix), np.float32(oy - iy)
    h, w = scene.height, scene.width
    a = bg[iy : iy + h, ix : ix + w]
    if fx == 0 and fy == 0:  # static camera: a plain copy
        return a.copy()
    b = bg[iy : iy + h, ix + 1 : ix + 1 + w]
    c = bg[iy + 1 : iy + 1 + h, ix : ix + w]
    d = bg[iy + 1 : iy + 1 + h, ix + 1 : ix + 1 + w]
    top = a + (b - a) * fx
    return top + ((c + (d - c) * fx) - top) * fy


def render(scene: Scene, t: float, rgb: bool = False) -> np.ndarray:
    """Scene intensity at time t (before the illumination gain): [H, W] gray, or [H, W, 3] when ``rgb``."""
    cam = scene.camera(t)
    canvas = background_view(scene, cam, rgb)
    for sprite in scene.layers:
        draw_sprite(canvas, sprite, sprite.geometry(t, cam), rgb)
    return canvas


def render_annotated(scene: Scene, t: float) -> tuple[np.ndarray, TargetState]:
    """RGB frame at time t ([H, W, 3] float32, before the gain) and the exact target state."""
    canvas, states = render_annotated_objects(scene, t, (scene.target_index,))
    return canvas, states[0]


def render_annotated_objects(
    scene: Scene, t: float, indices: tuple[int, ...] | list[int]
) -> tuple[np.ndarray, list[TargetState]]:
    """RGB frame at time t ([H, W, 3] float32, before the gain) and the exact state of each layer in ``indices``.

    Every layer is drawn back to front; a pixel belongs to the nearest layer covering at least half of it, so
    a layer's visible pixels are those it owns and nearer layers hide it (multi-object scenes annotate every
    object this way).
    """
    cam = scene.camera(t)
    canvas = background_view(scene, cam, True)
    owner = np.full((scene.height, scene.width), -1, dtype=np.int16)
    wanted = set(indices)
    inside: dict[int, int] = {i: 0 for i in wanted}
    geoms: dict[int, tuple[float, float, float, float]] = {i: (0.0, 0.0, 0.0, 0.0) for i in wanted}
    for i, sprite in enumerate(scene.layers):
        geom = sprite.geometry(t, cam)
        drawn = draw_sprite(canvas, sprite, geom, True)
        if i in wanted:
            geoms[i] = geom
        if drawn is None:
            continue
        r0, c0, alpha = drawn
        solid = alpha >= 0.5
        owner[r0 : r0 + alpha.shape[0], c0 : c0 + alpha.shape[1]][solid] = i
        if i in wanted:
            inside[i] = int(solid.sum())
    states = []
    for i in indices:
        cx, cy, w, h = geoms[i]
        visible_px = int(np.count_nonzero(owner == i))
        states.append(TargetState(cx, cy, w, h, scene.layers[i].full_area(w, h), inside[i], visible_px))
    return canvas, states
