"""Textures for the synthetic benchmark: natural images bundled with scikit-image plus procedural patterns.

Only image files that ship inside the installed ``skimage/data`` folder are used (read straight from disk with
``skimage.io.imread``); nothing is ever downloaded. All textures are float32 RGB in [0, 1], shape [H, W, 3].
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

# Colour or textured photographs that ship with scikit-image (no pooch download needed).
NATURAL_IMAGES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "retina.jpg",
    "color.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "camera.png",
    "moon.png",
    "coins.png",
    "page.png",
    "text.png",
    "cell.png",
    "clock_motion.png",
)
PROCEDURAL_KINDS = ("checker", "stripes", "rings", "blobs", "noise", "dots")


def _skimage_data_dir() -> Path | None:
    try:
        import skimage.data
    except ImportError:
        return None
    return Path(skimage.data.__file__).parent


@lru_cache(maxsize=1)
def bundled_images() -> tuple[str, ...]:
    """The names of :data:`NATURAL_IMAGES` present in the installed scikit-image (may be empty)."""
    root = _skimage_data_dir()
    if root is None:
        return ()
    return tuple(name for name in NATURAL_IMAGES if (root / name).is_file())


@lru_cache(maxsize=32)
def load_image(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as float32 RGB [H, W, 3] in [0, 1] (gray images are replicated)."""
    from skimage.io import imread

    root = _skimage_data_dir()
    if root is None or name not in bundled_images():
        raise FileNotFoundError(f"{name} is not bundled with the installed scikit-image")
    img = np.asarray(imread(root / name))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32)
    img /= 255.0 if img.max() > 1.0 else 1.0
    img.setflags(write=False)
    return img


def random_color(rng: np.random.Generator, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    return rng.uniform(low, high, size=3).astype(np.float32)


def _two_tone(mask: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Blend two colours by a [0, 1] mask -> [H, W, 3]."""
    m = mask[..., None].astype(np.float32)
    return (c0 * (1.0 - m) + c1 * m).astype(np.float32)


def smooth_noise(h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise in [0, 1], [h, w]: random values on a coarse grid, blurred and upsampled."""
    gh, gw = max(2, int(np.ceil(h / scale)) + 2), max(2, int(np.ceil(w / scale)) + 2)
    coarse = ndimage.gaussian_filter(rng.standard_normal((gh, gw)).astype(np.float32), 0.8)
    up = ndimage.zoom(coarse, (h / (gh - 2), w / (gw - 2)), order=1)[:h, :w]
    up = up - up.min()
    return (up / max(float(up.max()), 1e-6)).astype(np.float32)


def procedural(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural texture of ``kind`` (see :data:`PROCEDURAL_KINDS`), float32 [h, w, 3]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = random_color(rng), random_color(rng)
    if np.abs(c0 - c1).mean() < 0.3:  # keep the pattern visible
        c1 = np.clip(1.0 - c0, 0.0, 1.0)
    if kind == "checker":
        cell = rng.uniform(4, 16) * max(h, w) / 64
        return _two_tone(((xx // cell + yy // cell) % 2).astype(np.float32), c0, c1)
    if kind == "stripes":
        theta, lam = rng.uniform(0, np.pi), rng.uniform(5, 14) * max(h, w) / 64
        s = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / lam)
        return _two_tone(np.clip(s * 3 + 0.5, 0, 1), c0, c1)
    if kind == "rings":
        cy, cx, lam = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 12) * max(h, w) / 64
        s = np.sin(2 * np.pi * np.hypot(xx - cx, yy - cy) / lam)
        return _two_tone(np.clip(s * 3 + 0.5, 0, 1), c0, c1)
    if kind == "blobs":
        n = smooth_noise(h, w, rng.uniform(6, 14) * max(h, w) / 64, rng)
        return _two_tone(np.clip((n - 0.5) * 8 + 0.5, 0, 1), c0, c1)
    if kind == "noise":
        n = smooth_noise(h, w, rng.uniform(2, 5) * max(h, w) / 64, rng)
        return _two_tone(n, c0, c1)
    if kind == "dots":
        cell = rng.uniform(6, 12) * max(h, w) / 64
        fy, fx = (yy % cell) / cell - 0.5, (xx % cell) / cell - 0.5
        return _two_tone(np.clip((0.3 - np.hypot(fx, fy)) * 10 + 0.5, 0, 1), c0, c1)
    raise ValueError(f"unknown procedural texture {kind!r}; expected one of {PROCEDURAL_KINDS}")


def random_crop(img: np.ndarray, h: int, w: int, rng: np.random.Generator, tries: int = 6) -> np.ndarray:
    """A textured h x w crop of ``img`` (upsampled first when too small): the most contrasted of a few tries."""
    ih, iw = img.shape[:2]
    if ih < h or iw < w:
        f = max(h / ih, w / iw) * 1.01
        img = ndimage.zoom(img, (f, f, 1), order=1)
        ih, iw = img.shape[:2]
    best, best_std = None, -1.0
    for _ in range(tries):
        y, x = int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1))
        crop = img[y : y + h, x : x + w]
        s = float(crop.mean(axis=2).std())
        if s > best_std:
            best, best_std = crop, s
    assert best is not None
    return np.ascontiguousarray(best, dtype=np.float32)


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of [H, W, 3] to [h, w, 3]."""
    ih, iw = img.shape[:2]
    return np.ascontiguousarray(ndimage.zoom(img, (h / ih, w / iw, 1), order=1)[:h, :w], dtype=np.float32)


def random_texture(h: int, w: int, rng: np.random.Generator, natural_prob: float = 0.5) -> tuple[str, np.ndarray]:
    """A texture of about h x w: a crop of a bundled photograph (probability ``natural_prob``) or a procedural one.

    Returns ``(source_name, texture)`` so callers can make look-alikes from the same source.
    """
    names = bundled_images()
    if names and rng.random() < natural_prob:
        name = names[int(rng.integers(len(names)))]
        img = load_image(name)
        # Crop a region somewhat larger than the target and shrink it: objects keep fine detail.
        zoom = rng.uniform(1.0, 3.0)
        ch = int(min(img.shape[0], max(8, h * zoom)))
        cw = int(min(img.shape[1], max(8, w * zoom)))
        return name, resize(random_crop(img, ch, cw, rng), h, w)
    kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
    return kind, procedural(kind, h, w, rng)


def background_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A large background [h, w, 3]: a photograph scaled to cover it, or a procedural scene, mildly shaded."""
    names = bundled_images()
    if names and rng.random() < 0.6:
        name = names[int(rng.integers(len(names)))]
        img = load_image(name)
        ih, iw = img.shape[:2]
        f = max(h / ih, w / iw) * rng.uniform(1.0, 1.4)
        ch, cw = min(ih, int(np.ceil(h / f))), min(iw, int(np.ceil(w / f)))
        y, x = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
        tex = resize(np.ascontiguousarray(img[y : y + ch, x : x + cw]), h, w)
    else:
        base = procedural("noise", h, w, rng)
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
        detail = procedural(kind, h, w, rng)
        tex = (0.6 * base + 0.4 * detail).astype(np.float32)
    shade = 0.75 + 0.5 * smooth_noise(h, w, max(h, w) / 3, rng)[..., None]
    return np.clip(tex * shade, 0.0, 1.0).astype(np.float32)
