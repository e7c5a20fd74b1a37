"""The mock rig's object: a mug with an elliptic body and a ring handle, in the object frame.

Body: elliptic cylinder x²/a² + y²/b² <= 1, 0 <= z <= height (it stands on the platter).
Handle: torus in the XZ plane (its axis along Y) on the +X side, half sunk into the body;
seen from ±Y its hole is a through-hole in the silhouette. Rays are cast exactly against
these surfaces; `object_mesh` gives the same shape as a mesh for ground-truth checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hal.atomic import atomic_write_bytes
from hal.mock import scene_textures as tex

_HIT_EPS = 1e-7  # metres: sphere tracing stops this close to the handle's surface


@dataclass(frozen=True)
class MugShape:
    a: float = 0.034  # body half-width along X
    b: float = 0.026  # body half-depth along Y
    height: float = 0.085
    handle_major: float = 0.022  # radius of the handle's ring
    handle_minor: float = 0.0065  # radius of the handle's tube
    handle_z: float = 0.045

    @property
    def handle_centre(self) -> np.ndarray:
        return np.array([self.a + 0.55 * self.handle_major, 0.0, self.handle_z])

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.handle_centre
        outer = self.handle_major + self.handle_minor
        lo = np.array([-self.a, -max(self.b, self.handle_minor), 0.0])
        hi = np.array([c[0] + outer, max(self.b, self.handle_minor), self.height])
        return lo, hi


MUG = MugShape()


def _lookup(texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping texture lookup at fractional texel coordinates (N,) -> (N, 3)."""
    n = len(u)
    cols = 1024  # remap wants maps under 32767 rows: fold the list into a block
    rows = -(-n // cols)
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n], my[:n] = u - 0.5, v - 0.5
    out = cv2.remap(texture, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP)
    return out.reshape(-1, 3)[:n]


def _torus_hits(mug: MugShape, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Ray parameter of the first handle hit per ray (inf for a miss), by sphere tracing."""
    n = dirs.shape[1]
    t_hit = np.full(n, np.inf)
    o = origin - mug.handle_centre
    big, small = mug.handle_major, mug.handle_minor
    # Only rays through the torus' bounding sphere can hit it.
    a = np.einsum("ij,ij->j", dirs, dirs)
    b = 2 * (o @ dirs)
    c = o @ o - (big + small) ** 2
    disc = b * b - 4 * a * c
    idx = np.nonzero(disc > 0)[0]
    if not len(idx):
        return t_hit
    sq = np.sqrt(disc[idx])
    t = np.maximum((-b[idx] - sq) / (2 * a[idx]), 0.0)
    t_end = (-b[idx] + sq) / (2 * a[idx])
    d = dirs[:, idx]
    norm = np.sqrt(a[idx])
    for _ in range(120):
        px, py, pz = (o[k] + t * d[k] for k in range(3))
        q = np.sqrt(px * px + pz * pz) - big
        s = np.sqrt(q * q + py * py) - small
        done = s < _HIT_EPS
        t_hit[idx[done]] = t[done]
        keep = ~done & (t <= t_end)
        if not keep.any():
            break
        idx, t, t_end, d, norm = idx[keep], t[keep] + s[keep] / norm[keep], t_end[keep], \
            d[:, keep], norm[keep]
    return t_hit


def intersect_mug(mug: MugShape, origin: np.ndarray, dirs: np.ndarray):
    """Cast rays (origin (3,), directions (3, N)) at the mug, all in the object frame.

    Returns (indices of the rays that hit, ray parameter t, colour (K, 3) uint8,
    unit normal (K, 3)) or None when no ray hits.
    """
    ox, oy, oz = origin
    dx, dy, dz = dirs
    a, b, h = mug.a, mug.b, mug.height
    inf = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        qa = (dx / a) ** 2 + (dy / b) ** 2
        qb = 2 * (ox * dx / a ** 2 + oy * dy / b ** 2)
        qc = (ox / a) ** 2 + (oy / b) ** 2 - 1
        disc = qb * qb - 4 * qa * qc
        t_side = (-qb - np.sqrt(np.maximum(disc, 0))) / (2 * qa)
        z = oz + t_side * dz
        t_side = np.where((disc >= 0) & (t_side > 0) & (z >= 0) & (z <= h), t_side, inf)
        t_cap = np.where(dz < 0, (h - oz) / dz, inf)
        xc, yc = ox + t_cap * dx, oy + t_cap * dy
        t_cap = np.where((t_cap > 0) & ((xc / a) ** 2 + (yc / b) ** 2 <= 1), t_cap, inf)
    t_handle = _torus_hits(mug, np.asarray(origin, float), dirs)
    ts = np.stack([t_side, t_cap, t_handle])
    part = np.argmin(ts, axis=0)
    t = ts[part, np.arange(ts.shape[1])]
    idx = np.nonzero(np.isfinite(t))[0]
    if not len(idx):
        return None
    t, part = t[idx], part[idx]
    p = origin[:, None] + t * dirs[:, idx]
    colour = np.empty((len(idx), 3), np.uint8)
    normal = np.empty((len(idx), 3))

    s = part == 0
    if s.any():
        x, y, zz = p[:, s]
        body = tex.body_texture()
        u = (np.arctan2(y / b, x / a) / (2 * math.pi) % 1.0) * body.shape[1]
        colour[s] = _lookup(body, u, (h - zz) / h * body.shape[0])
        nv = np.stack([x / a ** 2, y / b ** 2, np.zeros_like(x)], axis=1)
        normal[s] = nv / np.linalg.norm(nv, axis=1, keepdims=True)
    s = part == 1
    if s.any():
        x, y, _ = p[:, s]
        cap = tex.cap_texture()
        colour[s] = _lookup(cap, (x + a) / (2 * a) * cap.shape[1],
                            (b - y) / (2 * b) * cap.shape[0])
        normal[s] = (0.0, 0.0, 1.0)
    s = part == 2
    if s.any():
        lx, ly, lz = p[:, s] - mug.handle_centre[:, None]
        rho = np.sqrt(lx * lx + lz * lz)
        q = rho - mug.handle_major
        ring = tex.handle_texture()
        u = (np.arctan2(lz, lx) / (2 * math.pi) % 1.0) * ring.shape[1]
        v = (np.arctan2(ly, q) / (2 * math.pi) % 1.0) * ring.shape[0]
        colour[s] = _lookup(ring, u, v)
        nv = np.stack([q * lx / rho, ly, q * lz / rho], axis=1)
        normal[s] = nv / np.linalg.norm(nv, axis=1, keepdims=True)
    return idx, t, colour, normal


def object_mesh(mug: MugShape = MUG, sections: int = 192):
    """The mug as a trimesh.Trimesh in the object frame (metres, Z up).

    The body is closed; the handle is its torus less the faces wholly inside the body, so
    the mesh is the visible surface (plus the body's bottom, which stands on the platter).
    """
    import trimesh

    ang = np.linspace(0, 2 * math.pi, sections, endpoint=False)
    ring = np.stack([mug.a * np.cos(ang), mug.b * np.sin(ang)], axis=1)
    verts = np.vstack([
        np.column_stack([ring, np.zeros(sections)]),
        np.column_stack([ring, np.full(sections, mug.height)]),
        [[0.0, 0.0, 0.0], [0.0, 0.0, mug.height]],
    ])
    faces = []
    bottom_c, top_c = 2 * sections, 2 * sections + 1
    for i in range(sections):
        j = (i + 1) % sections
        faces += [[i, j, sections + j], [i, sections + j, sections + i]]
        faces += [[bottom_c, j, i], [top_c, sections + i, sections + j]]
    body = trimesh.Trimesh(verts, np.array(faces), process=True)
    handle = _handle_mesh(mug, sections, 48)
    body.visual.vertex_colors = (205, 120, 60, 255)
    handle.visual.vertex_colors = (40, 90, 210, 255)
    return trimesh.util.concatenate([body, handle])


def _handle_mesh(mug: MugShape, major: int, minor: int):
    """The handle's torus without the faces that lie wholly inside the body."""
    import trimesh

    al, be = np.meshgrid(np.linspace(0, 2 * math.pi, major, endpoint=False),
                         np.linspace(0, 2 * math.pi, minor, endpoint=False), indexing="ij")
    rho = mug.handle_major + mug.handle_minor * np.cos(be)
    c = mug.handle_centre
    verts = np.stack([c[0] + rho * np.cos(al), c[1] + mug.handle_minor * np.sin(be),
                      c[2] + rho * np.sin(al)], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(major), np.arange(minor), indexing="ij")
    v00 = i * minor + j
    v10 = ((i + 1) % major) * minor + j
    v01 = i * minor + (j + 1) % minor
    v11 = ((i + 1) % major) * minor + (j + 1) % minor
    faces = np.concatenate([np.stack([v00, v11, v10], -1).reshape(-1, 3),
                            np.stack([v00, v01, v11], -1).reshape(-1, 3)])
    inside = (verts[:, 0] / mug.a) ** 2 + (verts[:, 1] / mug.b) ** 2 < 1
    faces = faces[~inside[faces].all(axis=1)]
    mesh = trimesh.Trimesh(verts, faces, process=False)
    mesh.remove_unreferenced_vertices()
    return mesh


def write_object_glb(path: Path | str, mug: MugShape = MUG) -> Path:
    """Write the mock object's true mesh as binary glTF, vertices in the object frame.

    The contract's object frame is Z up (glTF viewers assume Y up and show it on its side);
    positions are written as they are so they compare directly with poses and models.
    """
    path = Path(path)
    data = object_mesh(mug).export(file_type="glb")
    atomic_write_bytes(path, data)
    return path
