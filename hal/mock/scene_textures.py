"""Procedural textures of the mock scene: seeded, so every run draws the same pixels.

Photogrammetry needs features at several scales on the object, and mask tests need the
object's colours to differ from the platter's and the backdrop's, so the object is
saturated and the platter and table are low-saturation browns and greys.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def value_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [0, 1]: a random grid of about `cells` cells, upsampled bicubically."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.random((gh + 3, gw + 3)).astype(np.float32)
    big = cv2.resize(grid, (w + 3 * w // gw, h + 3 * h // gh), interpolation=cv2.INTER_CUBIC)
    out = big[h // gh: h // gh + h, w // gw: w // gw + w]
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def fractal_noise(shape: tuple[int, int], rng: np.random.Generator,
                  octaves: tuple[int, ...] = (4, 12, 40, 120)) -> np.ndarray:
    acc = np.zeros(shape, np.float32)
    for i, cells in enumerate(octaves):
        acc += value_noise(shape, cells, rng) * (0.55 ** i)
    acc -= acc.min()
    return acc / max(float(acc.max()), 1e-6)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    hsv = np.dstack([h * 180.0, s * 255.0, v * 255.0]).clip(0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _dots(img: np.ndarray, rng: np.random.Generator, count: int, radius: tuple[int, int],
          colours: list[tuple[int, int, int]], wrap_x: bool = False) -> None:
    h, w = img.shape[:2]
    for _ in range(count):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(radius[0], radius[1] + 1))
        colour = colours[int(rng.integers(0, len(colours)))]
        for shift in ((-w, 0, w) if wrap_x else (0,)):
            cv2.circle(img, (x + shift, y), r, colour, -1, lineType=cv2.LINE_AA)


@functools.lru_cache(maxsize=1)
def body_texture() -> np.ndarray:
    """Unrolled side of the mug body: columns are the angle around it, rows go down from the
    rim. Wraps seamlessly left to right."""
    rng = np.random.default_rng(12)
    h, w = 512, 1536
    hue = (value_noise((h, w), 6, rng) * 0.9 + 0.55) % 1.0
    sat = 0.55 + 0.45 * value_noise((h, w), 20, rng)
    val = 0.45 + 0.55 * fractal_noise((h, w), rng)
    img = _hsv_to_rgb(hue, sat, val)
    img[:, -64:] = (img[:, -64:] * np.linspace(1, 0, 64)[None, :, None]
                    + img[:, :64] * np.linspace(0, 1, 64)[None, :, None]).astype(np.uint8)
    _dots(img, rng, 260, (3, 14), [(20, 20, 20), (250, 250, 240), (240, 200, 0),
                                   (0, 60, 200)], wrap_x=True)
    for i in range(0, w, 96):  # vertical ribs: strong corners for feature matching
        cv2.line(img, (i, 0), (i, h), (15, 15, 15), 3)
    for j in range(40, h, 110):
        cv2.line(img, (0, j), (w, j), (245, 245, 245), 2)
    return img


@functools.lru_cache(maxsize=1)
def cap_texture() -> np.ndarray:
    """Top of the mug, over its bounding ellipse's square [-a, a] x [-b, b]."""
    rng = np.random.default_rng(13)
    n = 512
    img = _hsv_to_rgb((0.05 + 0.15 * value_noise((n, n), 5, rng)),
                      0.7 + 0.3 * value_noise((n, n), 9, rng),
                      0.55 + 0.45 * fractal_noise((n, n), rng))
    _dots(img, rng, 80, (4, 12), [(20, 20, 20), (240, 240, 240), (0, 120, 60)])
    cv2.line(img, (n // 2, n // 2), (n - 10, n // 2), (200, 0, 0), 6)  # a "north" mark
    return img


@functools.lru_cache(maxsize=1)
def handle_texture() -> np.ndarray:
    """The handle, over (angle along the ring, angle around the tube)."""
    rng = np.random.default_rng(14)
    h, w = 128, 1024
    base = np.zeros((h, w, 3), np.uint8)
    stripes = (np.arange(w) // 32) % 2
    base[:] = np.where(stripes[None, :, None] == 1, (30, 80, 210), (250, 210, 40))
    v = 0.6 + 0.4 * fractal_noise((h, w), rng)
    return (base * v[:, :, None]).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def platter_texture() -> np.ndarray:
    """Top of the platter over [-R, R]^2: grey-brown felt with a faint grid and dark specks."""
    rng = np.random.default_rng(21)
    n = 1024
    noise = fractal_noise((n, n), rng, (6, 24, 80))
    base = np.array([120, 110, 98], np.float32)
    img = base[None, None, :] * (0.8 + 0.4 * noise[:, :, None])
    yy, xx = np.mgrid[0:n, 0:n]
    grid = ((xx // 64 + yy // 64) % 2).astype(np.float32)  # ~1.5 cm checker
    img *= (0.94 + 0.12 * grid)[:, :, None]
    img = img.clip(0, 255).astype(np.uint8)
    _dots(img, rng, 700, (2, 5), [(50, 45, 40), (185, 175, 160)])
    centre = (n // 2, n // 2)
    for radius in (n // 2 - 20, n // 4):
        cv2.circle(img, centre, radius, (200, 195, 185), 3, lineType=cv2.LINE_AA)
    cv2.line(img, (n // 2, n // 2 + n // 4), (n // 2, n - 20), (170, 40, 30), 6)  # index mark
    return img


@functools.lru_cache(maxsize=1)
def table_texture() -> np.ndarray:
    """Wooden table boards, tiled every 0.6 m."""
    rng = np.random.default_rng(31)
    n = 768
    # Noise stretched 8x along x reads as wood grain.
    grain = cv2.resize(value_noise((n, n // 8), 60, rng), (n, n), interpolation=cv2.INTER_CUBIC)
    tone = 0.75 + 0.25 * value_noise((n, n), 8, rng)
    wood = np.array([150, 105, 65], np.float32)[None, None, :] * (0.7 + 0.3 * grain)[..., None]
    img = (wood * tone[..., None]).clip(0, 255).astype(np.uint8)
    for x in range(0, n, n // 6):
        cv2.line(img, (x, 0), (x, n), (60, 40, 25), 3)
    return img


@functools.lru_cache(maxsize=1)
def wall_texture() -> np.ndarray:
    """Blue-grey studio wall with posters, tiled every 1.2 m wide by 0.8 m high."""
    rng = np.random.default_rng(41)
    h, w = 512, 768
    ramp = np.linspace(1.0, 0.75, h, dtype=np.float32)[:, None]
    img = (np.array([95, 110, 125], np.float32)[None, None, :]
           * (ramp * (0.9 + 0.2 * value_noise((h, w), 10, rng)))[..., None])
    img = img.clip(0, 255).astype(np.uint8)
    for _ in range(14):
        pw, ph = int(rng.integers(40, 140)), int(rng.integers(50, 160))
        x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        cv2.rectangle(img, (x, y), (x + pw, y + ph), colour, -1)
        cv2.rectangle(img, (x, y), (x + pw, y + ph), (20, 20, 20), 2)
        for k in range(1, 5):
            yy = y + k * ph // 5
            cv2.line(img, (x + pw // 8, yy), (x + pw - pw // 8, yy), (235, 235, 225), 2)
    return img
