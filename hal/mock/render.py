"""Synthetic photos of a textured cylinder on a turntable, drawn with Pillow only.

What the view shows depends only on the turntable angle (and the exposure gain), never on
the clock or a random state, so the same angle always gives the same pixels. The expensive
parts (backdrop, unrolled cylinder texture, shading) depend only on the image size and are
cached; a frame is then one mesh warp, a paste and a few ellipses, which keeps 1280x960
well under 0.1 s on one core.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

_STRIPS = 64  # mesh columns across the cylinder; more near the middle is not needed


@dataclass(frozen=True)
class _Geometry:
    width: int
    height: int
    cx: int
    floor_y: int  # centre of the platter ellipse
    platter_rx: int
    platter_ry: int
    radius: int  # cylinder radius in pixels (half its on-screen width)
    ellipse_b: int  # half height of the cylinder's top/bottom ellipses
    body_h: int  # cylinder height in pixels
    circumference: int  # texture pixels for one full turn

    @classmethod
    def for_size(cls, width: int, height: int) -> _Geometry:
        radius = max(4, round(width * 0.17))
        b = max(1, round(radius * 0.25))  # seen from slightly above
        return cls(
            width=width,
            height=height,
            cx=width // 2,
            floor_y=round(height * 0.80),
            platter_rx=round(width * 0.36),
            platter_ry=max(1, round(width * 0.36 * 0.25)),
            radius=radius,
            ellipse_b=b,
            body_h=max(4, round(height * 0.48)),
            circumference=max(8, round(2 * math.pi * radius)),
        )


@functools.lru_cache(maxsize=4)
def _backdrop(width: int, height: int) -> Image.Image:
    """Fixed studio backdrop with posters: features that never move between frames."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    wall_h = round(height * 0.62)
    for y in range(height):
        if y < wall_h:
            t = y / max(1, wall_h)
            colour = (round(70 + 60 * t), round(80 + 55 * t), round(95 + 50 * t))
        else:
            t = (y - wall_h) / max(1, height - wall_h)
            colour = (round(120 - 40 * t), round(105 - 35 * t), round(90 - 30 * t))
        draw.line([(0, y), (width, y)], fill=colour)
    rng = random.Random(20240601)
    for _ in range(14):
        w = rng.randint(width // 20, width // 7)
        h = rng.randint(height // 16, height // 6)
        x = rng.randint(0, width - w)
        y = rng.randint(0, max(0, wall_h - h - 1))
        fill = tuple(rng.randint(40, 230) for _ in range(3))
        draw.rectangle([x, y, x + w, y + h], fill=fill, outline=(20, 20, 20))
        for i in range(4):
            yy = y + (i + 1) * h // 5
            draw.line([(x + w // 8, yy), (x + w - w // 8, yy)], fill=(235, 235, 225))
    return img


@functools.lru_cache(maxsize=4)
def _texture(circumference: int, height: int) -> Image.Image:
    """The cylinder's label, unrolled, tiled twice so any half turn is one contiguous crop."""
    tex = Image.new("RGBA", (circumference, height), (205, 190, 160, 255))
    draw = ImageDraw.Draw(tex)
    rng = random.Random(7)
    band = max(2, height // 12)
    for i in range(0, height, 2 * band):  # horizontal bands give the stitcher rows to match
        draw.rectangle([0, i, circumference, i + band // 3], fill=(150, 120, 90, 255))
    shapes = []
    for _ in range(max(40, circumference * height // 2500)):
        w = rng.randint(3, max(4, circumference // 25))
        h = rng.randint(3, max(4, height // 10))
        x = rng.randint(0, circumference - 1)
        y = rng.randint(0, height - 1)
        kind = rng.choice(("rect", "ellipse", "ellipse", "rect"))
        fill = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255), 255)
        shapes.append((kind, x, y, w, h, fill))
    for kind, x, y, w, h, fill in shapes:
        for shift in (-circumference, 0, circumference):  # seamless where the label wraps
            box = [x + shift, y, x + shift + w, y + h]
            if kind == "rect":
                draw.rectangle(box, fill=fill, outline=(0, 0, 0, 255))
            else:
                draw.ellipse(box, fill=fill, outline=(0, 0, 0, 255))
    for deg in range(0, 360, 30):  # longitude labels, handy when looking at a frame
        x = round(deg / 360 * circumference)
        draw.line([(x, 0), (x, height)], fill=(30, 30, 30, 255), width=2)
        draw.text((x + 4, height // 2), f"{deg:03d}", fill=(10, 10, 10, 255))
    doubled = Image.new("RGBA", (2 * circumference, height))
    doubled.paste(tex, (0, 0))
    doubled.paste(tex, (circumference, 0))
    return doubled


@functools.lru_cache(maxsize=4)
def _shading(width: int, height: int) -> Image.Image:
    """Per-column brightness of a lit cylinder (darker towards its silhouette)."""
    row = Image.new("RGBA", (width, 1))
    for x in range(width):
        u = (x + 0.5) / width * 2 - 1
        v = round(255 * (0.35 + 0.65 * math.sqrt(max(0.0, 1 - u * u))))
        row.putpixel((x, 0), (v, v, v, 255))
    return row.resize((width, height))


def _mesh(g: _Geometry, angle_deg: float) -> list[tuple[tuple[int, int, int, int], tuple]]:
    """Map screen columns of the cylinder to texture columns for this angle."""
    c = g.circumference
    offset = ((-angle_deg) % 360.0) / 360.0 * c + c / 2
    layer_h = g.body_h + g.ellipse_b
    edges = []
    for k in range(_STRIPS + 1):
        lon = -math.pi / 2 + math.pi * k / _STRIPS  # equal angles: narrow strips at the rim
        u = math.sin(lon)
        x = round(g.radius * (1 + u))
        sx = offset + lon / (2 * math.pi) * c
        dy = g.ellipse_b * math.cos(lon)  # the front of the cylinder sits lower on screen
        edges.append((x, sx, dy))
    mesh = []
    for (x0, sx0, dy0), (x1, sx1, dy1) in itertools.pairwise(edges):
        if x1 <= x0:
            continue
        quad = (sx0, -dy0, sx0, layer_h - dy0, sx1, layer_h - dy1, sx1, -dy1)
        mesh.append(((x0, 0, x1, layer_h), quad))
    return mesh


def render_view(angle_deg: float, size: tuple[int, int], gain: float = 1.0) -> Image.Image:
    """RGB picture of the object on the platter turned to `angle_deg`.

    `gain` scales brightness, the way auto-exposure would; the camera holds it at 1.0 or at
    the metered value once exposure is locked.
    """
    width, height = size
    if width < 16 or height < 16:
        raise ValueError("The simulated camera needs at least 16x16 pixels.")
    g = _Geometry.for_size(width, height)
    img = _backdrop(width, height).copy()
    draw = ImageDraw.Draw(img)
    theta = math.radians(angle_deg)

    # Platter: a thick disc, with rim ticks that turn with it (tick 0 is red).
    px, py, rx, ry = g.cx, g.floor_y, g.platter_rx, g.platter_ry
    thick = max(2, height // 60)
    draw.ellipse([px - rx, py - ry + thick, px + rx, py + ry + thick], fill=(25, 25, 28))
    draw.ellipse([px - rx, py - ry, px + rx, py + ry], fill=(58, 58, 64))
    for i in range(24):
        a = theta + math.radians(i * 15)
        s, c = math.sin(a), math.cos(a)
        inner = (px + 0.82 * rx * s, py + 0.82 * ry * c)
        outer = (px + 0.97 * rx * s, py + 0.97 * ry * c)
        colour = (220, 40, 40) if i == 0 else (225, 225, 225) if i % 6 == 0 else (150, 150, 150)
        draw.line([inner, outer], fill=colour, width=max(1, width // 400))

    # Cylinder body: the visible half of the unrolled label, warped onto the curve.
    layer_w, layer_h = 2 * g.radius, g.body_h + g.ellipse_b
    texture = _texture(g.circumference, g.body_h)
    body = texture.transform(
        (layer_w, layer_h), Image.Transform.MESH, _mesh(g, angle_deg),
        resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0, 0),
    )
    body = ImageChops.multiply(body, _shading(layer_w, layer_h))
    top_y = g.floor_y - g.body_h
    img.paste(body, (g.cx - g.radius, top_y), body)

    # Lid with spokes that turn with the platter.
    r, b = g.radius, g.ellipse_b
    draw.ellipse([g.cx - r, top_y - b, g.cx + r, top_y + b], fill=(228, 214, 190),
                 outline=(90, 80, 70))
    for i in range(6):
        a = theta + math.radians(i * 60)
        end = (g.cx + 0.92 * r * math.sin(a), top_y + 0.92 * b * math.cos(a))
        draw.line([(g.cx, top_y), end], fill=(40, 90, 160) if i else (200, 30, 30),
                  width=max(1, width // 320))

    if gain != 1.0:
        lut = [min(255, round(v * gain)) for v in range(256)] * 3
        img = img.point(lut)
    return img
