"""The visual hull: the object is where every frame's mask says "object".

Each frame's mask becomes a signed distance image (pixels, + inside); a voxel's value is the
smallest of those distances over all frames, in metres (pixels × depth / focal length), so
the zero level is the hull's surface to a fraction of a voxel and marching cubes
(skimage.measure.marching_cubes) gives a smooth mesh rather than voxel steps. Coarse first,
over a box around the turntable axis that every camera looks at, then fine over the box the
coarse hull occupies. A voxel that is clearly outside in one frame is dropped from the rest,
which is most of the work saved. The platter's surface (z = 0) closes the hull from below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import trimesh

from scanner_app.reconstruction.frames import FrameInput, project_points

OUTSIDE_PX = -1.0e4  # the value of pixels beyond the frame's edge: never the object
COARSE_RESOLUTION = 48


class HullError(ValueError):
    """The masks and poses give no object (the message says what to change)."""


@dataclass
class Hull:
    mesh: trimesh.Trimesh
    voxel_m: float
    bounds: tuple[np.ndarray, np.ndarray]
    grid: tuple[int, int, int]


def signed_distance_px(mask: np.ndarray) -> np.ndarray:
    """+ inside the mask, − outside, zero halfway between an object and a background pixel."""
    m = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    return (inside - outside).astype(np.float32)


def _sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup at (u, v); OUTSIDE_PX beyond the image. remap wants maps under 32767
    rows, so the point list is folded into a block."""
    n = len(u)
    cols = 1024
    rows = max(1, -(-n // cols))
    mx = np.full(rows * cols, -10.0, np.float32)
    my = np.full(rows * cols, -10.0, np.float32)
    mx[:n], my[:n] = u, v
    out = cv2.remap(image, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=OUTSIDE_PX)
    return out.reshape(-1)[:n]


def _start_box(frames: list[FrameInput]) -> tuple[np.ndarray, np.ndarray]:
    """A box around the axis that holds anything all cameras can see: half as wide as the
    nearest camera is from the axis, from the platter up to the highest camera."""
    centres = np.array([f.pose.centre for f in frames])
    reach = 0.5 * float(np.min(np.hypot(centres[:, 0], centres[:, 1])))
    top = max(float(np.max(centres[:, 2])), reach)
    return np.array([-reach, -reach, 0.0]), np.array([reach, reach, top])


def _field(frames: list[FrameInput], sdfs: list[np.ndarray], points: np.ndarray,
           band_m: float, cancel: Callable[[], None],
           progress: Callable[[float], None]) -> np.ndarray:
    """min over frames of the metric signed distance, clamped below at −band_m."""
    value = np.full(len(points), np.inf, np.float32)
    alive = np.arange(len(points))
    for number, (frame, sdf) in enumerate(zip(frames, sdfs, strict=True)):
        cancel()
        if not len(alive):
            break
        u, v, z = project_points(frame.intrinsics, frame.pose, points[alive])
        d = _sample(sdf, u, v) * (np.maximum(z, 1e-6) / frame.intrinsics.fx)
        d[z <= 1e-6] = -band_m  # behind the camera: not seen as the object
        value[alive] = np.minimum(value[alive], d)
        alive = alive[value[alive] > -band_m]
        progress((number + 1) / len(frames))
    return np.maximum(value, -band_m)


def _grid(lo: np.ndarray, hi: np.ndarray, voxel: float) -> tuple[np.ndarray, tuple[int, ...]]:
    shape = tuple(int(n) for n in np.maximum(np.ceil((hi - lo) / voxel), 1).astype(int) + 1)
    axes = [lo[i] + voxel * np.arange(shape[i]) for i in range(3)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1), shape


def visual_hull(frames: list[FrameInput], resolution: int = 160,
                cancel: Callable[[], None] = lambda: None,
                progress: Callable[[float], None] = lambda _f: None) -> Hull:
    """The hull's mesh in the object frame (metres); `resolution` voxels along its longest
    side. `cancel()` raises to stop; `progress(fraction)` reports."""
    from skimage.measure import marching_cubes

    usable = [f for f in frames if f.mask() is not None and f.mask().any()]
    if len(usable) < 3:
        raise HullError("Fewer than three frames have the object in their mask, so there is no "
                        "shape to build: take the scan again with the object in view and a "
                        "plainer backdrop.")
    sdfs = [signed_distance_px(f.mask()) for f in usable]

    lo, hi = _start_box(usable)
    coarse_voxel = float(np.max(hi - lo)) / COARSE_RESOLUTION
    points, shape = _grid(lo, hi, coarse_voxel)
    coarse = _field(usable, sdfs, points, 2 * coarse_voxel, cancel,
                    lambda f: progress(0.25 * f)).reshape(shape)
    inside = np.argwhere(coarse > -0.5 * coarse_voxel)
    if not len(inside):
        raise HullError("No part of the space above the platter is inside every mask: the "
                        "masks or the poses disagree. Calibrate the rig and scan again.")
    box_lo = lo + (inside.min(axis=0) - 2) * coarse_voxel
    box_hi = lo + (inside.max(axis=0) + 2) * coarse_voxel
    box_lo[2] = max(box_lo[2], 0.0)  # nothing below the platter's surface

    voxel = float(np.max(box_hi - box_lo)) / resolution
    points, shape = _grid(box_lo, box_hi, voxel)
    fine = _field(usable, sdfs, points, 3 * voxel, cancel,
                  lambda f: progress(0.25 + 0.7 * f)).reshape(shape)
    # Closed on every side, the platter's surface included (the bottom layer is z = 0).
    padded = np.pad(fine, 1, constant_values=-3 * voxel)
    if padded.max() <= 0:
        raise HullError("The hull is empty: the masks or the poses disagree. Calibrate the "
                        "rig and scan again.")
    verts, faces, _normals, _values = marching_cubes(padded, level=0.0,
                                                     spacing=(voxel, voxel, voxel))
    verts = verts + (box_lo - voxel)
    verts[:, 2] = np.maximum(verts[:, 2], 0.0)
    # marching_cubes winds faces for a field that grows outward: flip to face outwards.
    mesh = trimesh.Trimesh(vertices=verts, faces=faces[:, ::-1], process=True)
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:  # specks from noisy masks: keep the object
        mesh = max(parts, key=lambda p: p.area)
    progress(1.0)
    return Hull(mesh, voxel, (box_lo, box_hi), shape)


def colour_vertices(mesh: trimesh.Trimesh, frames: list[FrameInput],
                    cancel: Callable[[], None] = lambda: None) -> np.ndarray:
    """RGBA per vertex from the frame that faces it best among those whose mask holds it."""
    verts = np.asarray(mesh.vertices)
    normals = np.asarray(mesh.vertex_normals)
    best = np.full(len(verts), -np.inf)
    colours = np.full((len(verts), 4), 160, np.uint8)
    colours[:, 3] = 255
    for frame in frames:
        cancel()
        mask = frame.mask()
        if mask is None:
            continue
        rgb = frame.rgb()
        to_cam = frame.pose.centre - verts
        facing = np.einsum("ij,ij->i", normals, to_cam) / np.linalg.norm(to_cam, axis=1)
        u, v, z = project_points(frame.intrinsics, frame.pose, verts)
        ui, vi = np.rint(u).astype(int), np.rint(v).astype(int)
        h, w = mask.shape
        seen = (z > 0) & (ui >= 0) & (vi >= 0) & (ui < w) & (vi < h)
        seen[seen] &= mask[vi[seen], ui[seen]]
        better = seen & (facing > best)
        if rgb.shape[:2] != mask.shape:  # photo and mask at different sizes
            sy, sx = rgb.shape[0] / h, rgb.shape[1] / w
            ui = np.clip((ui * sx).astype(int), 0, rgb.shape[1] - 1)
            vi = np.clip((vi * sy).astype(int), 0, rgb.shape[0] - 1)
        colours[better, :3] = rgb[vi[better], ui[better]]
        best[better] = facing[better]
    return colours
