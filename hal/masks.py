"""Object masks: which pixels of a frame show the object, not the backdrop or the platter.

With a background plate (the empty platter photographed once per set-up at the ring's
elevation) a frame differs from the plate only where the object is, except on the platter
top, which has turned by (frame angle − plate angle). The platter top is a plane about the
known axis, so its part of the plate is re-projected to the frame's angle first (that needs
the camera's intrinsics and pose: the calibration, or the nominal rig geometry). A plain
plate covers what never moves (backdrop, table, rim).

Without a plate the fallback assumes a uniform backdrop (and platter): the background colour
is the median of the image border, and the object is what differs from it.

Both raw masks are refined the same way: small specks dropped, small gaps closed, holes
smaller than a few dozen pixels filled; larger holes (a mug's handle) and thin parts stay,
because nothing fills holes wholesale.

A scan masks many frames against one plate per ring: PlateMasker prepares the plate once
(blurred, the platter top's rays and lens undistortion worked out), so a frame costs only
its own difference, the re-projection of the rectangle holding the platter top, and the
refinement on the rectangle holding the raw mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hal.atomic import atomic_write_bytes
from hal.geometry import (
    Intrinsics,
    Pose,
    distort_normalised,
    rot_z,
    undistort_normalised,
)

PLATE_THRESHOLD = 28.0  # 0-255 scale, after a light blur: JPEG noise stays well below it
PLATE_LOW_FRACTION = 0.4
STRONG_FACTOR = 3.0
UNIFORM_THRESHOLD = 40.0


@dataclass
class PlatterWarp:
    """Where each frame pixel on the platter top finds the same spot of platter in the plate."""

    map_x: np.ndarray  # float32 (H, W): plate x for each frame pixel
    map_y: np.ndarray
    region: np.ndarray  # bool (H, W): frame pixels on the platter top


class PlatterTop:
    """The platter top as one ring's camera sees it: for the pixels of the rectangle holding
    it, the spot of platter (x, y on the platter plane, metres) each pixel shows.

    This is the costly part of re-projecting the plate (rays, lens undistortion); it does not
    depend on the platter's angle, so one ring computes it once and each frame only turns and
    projects the rectangle's points (`maps`).
    """

    def __init__(self, intrinsics: Intrinsics, pose0: Pose, platter_radius_m: float) -> None:
        self.intrinsics, self.pose0 = intrinsics, pose0
        w, h = intrinsics.width, intrinsics.height
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        xn, yn = (u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy
        if intrinsics.has_distortion:
            xn, yn = undistort_normalised(xn, yn, intrinsics.distortion)
        rt, c = pose0.R.T, pose0.centre
        d = [rt[i, 0] * xn + rt[i, 1] * yn + rt[i, 2] for i in range(3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d[2] < 0, -c[2] / d[2], np.inf)
        px, py = c[0] + t * d[0], c[1] + t * d[1]
        self.region = np.isfinite(t) & (px * px + py * py <= platter_radius_m ** 2)
        rows, cols = np.nonzero(self.region.any(axis=1))[0], np.nonzero(self.region.any(axis=0))[0]
        if rows.size == 0:
            self.box = (0, 0, 0, 0)
        else:
            # One pixel more on each side: the 3x3 range of the moved plate (plate_difference)
            # reaches that far.
            self.box = (max(rows[0] - 1, 0), min(rows[-1] + 2, h),
                        max(cols[0] - 1, 0), min(cols[-1] + 2, w))
        r0, r1, c0, c1 = self.box
        inside = self.region[r0:r1, c0:c1]
        self.px = np.where(inside, px[r0:r1, c0:c1], 0.0)
        self.py = np.where(inside, py[r0:r1, c0:c1], 0.0)

    def maps(self, plate_angle_deg: float, frame_angle_deg: float) -> tuple[np.ndarray,
                                                                              np.ndarray]:
        """Plate x and y (float32) for each pixel of `box`."""
        # The plate shows this spot of platter turned by (plate − frame) angle.
        rz = rot_z(math.radians(plate_angle_deg - frame_angle_deg))
        px, py, r, intr = self.px, self.py, self.pose0.R, self.intrinsics
        qx, qy = rz[0, 0] * px + rz[0, 1] * py, rz[1, 0] * px + rz[1, 1] * py
        cam = [r[i, 0] * qx + r[i, 1] * qy + self.pose0.t[i] for i in range(3)]
        x2, y2 = cam[0] / cam[2], cam[1] / cam[2]
        if intr.has_distortion:
            x2, y2 = distort_normalised(x2, y2, intr.distortion)
        return ((intr.fx * x2 + intr.cx).astype(np.float32),
                (intr.fy * y2 + intr.cy).astype(np.float32))

    def warp(self, plate_angle_deg: float, frame_angle_deg: float) -> PlatterWarp:
        """The whole frame's maps (0 outside `box`: no platter pixel's 3x3 range reaches
        there)."""
        map_x = np.zeros(self.region.shape, np.float32)
        map_y = np.zeros(self.region.shape, np.float32)
        r0, r1, c0, c1 = self.box
        map_x[r0:r1, c0:c1], map_y[r0:r1, c0:c1] = self.maps(plate_angle_deg, frame_angle_deg)
        return PlatterWarp(map_x, map_y, self.region)


def platter_warp(intrinsics: Intrinsics, pose0: Pose, plate_angle_deg: float,
                 frame_angle_deg: float, platter_radius_m: float) -> PlatterWarp:
    """Map for re-projecting the plate's platter top to the frame's platter angle.

    `pose0` is the camera pose at platter angle 0 for this ring (hal.geometry.camera_pose or
    Calibration.pose(elevation, 0)); `intrinsics` must be those of the frame's size.
    """
    return PlatterTop(intrinsics, pose0, platter_radius_m).warp(plate_angle_deg,
                                                                frame_angle_deg)


def _blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0.8)


def _channel_max(a: np.ndarray) -> np.ndarray:
    # Channel by channel: numpy's max over a 3-long last axis is several times slower.
    if a.ndim == 2:
        return a
    out = a[..., 0].copy()
    for c in range(1, a.shape[2]):
        np.maximum(out, a[..., c], out=out)
    return out


def _tolerant_difference(f: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """How far each pixel lies outside the 3x3 range of the moved plate: re-sampling shifts
    sharp platter texture edges by a fraction of a pixel."""
    kernel = np.ones((3, 3), np.uint8)
    hi, lo = cv2.dilate(moved, kernel), cv2.erode(moved, kernel)
    return _channel_max(cv2.max(cv2.max(cv2.subtract(f, hi), cv2.subtract(lo, f)), 0.0))


class PlateMasker:
    """One plate prepared for every frame of its ring: blurred once, with the platter top's
    geometry (when the camera model and platter radius are known) computed once."""

    def __init__(self, plate: np.ndarray, intrinsics: Intrinsics | None = None,
                 pose0: Pose | None = None, plate_angle_deg: float = 0.0,
                 platter_radius_m: float | None = None) -> None:
        self.shape = plate.shape
        self.blurred = _blur(plate)
        self.plate_angle_deg = plate_angle_deg
        self.top: PlatterTop | None = None
        if intrinsics is not None and pose0 is not None and platter_radius_m:
            size = (plate.shape[1], plate.shape[0])
            if (intrinsics.width, intrinsics.height) != size:
                intrinsics = intrinsics.scaled(*size)
            self.top = PlatterTop(intrinsics, pose0, platter_radius_m)

    def difference(self, frame: np.ndarray, frame_angle_deg: float = 0.0) -> np.ndarray:
        """Per-pixel colour difference (0-255) between a frame and the plate."""
        if frame.shape != self.shape:
            raise ValueError("The background plate and the frame differ in size.")
        f = _blur(frame)
        diff = _channel_max(cv2.absdiff(f, self.blurred))
        top = self.top
        if top is not None and top.box[1] > top.box[0]:
            r0, r1, c0, c1 = top.box
            map_x, map_y = top.maps(self.plate_angle_deg, frame_angle_deg)
            moved = cv2.remap(self.blurred, map_x, map_y, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
            tolerant = _tolerant_difference(f[r0:r1, c0:c1], moved)
            box = diff[r0:r1, c0:c1]
            np.copyto(box, tolerant, where=top.region[r0:r1, c0:c1])
        return diff

    def mask(self, frame: np.ndarray, frame_angle_deg: float = 0.0,
             threshold: float = PLATE_THRESHOLD) -> np.ndarray:
        """Object mask (bool) of a frame of this ring (RGB or BGR, as the plate)."""
        diff = self.difference(frame, frame_angle_deg)
        return refine_mask(hysteresis(diff, threshold, threshold * PLATE_LOW_FRACTION),
                           diff > threshold * STRONG_FACTOR)


def plate_difference(frame: np.ndarray, plate: np.ndarray,
                     warp: PlatterWarp | None = None) -> np.ndarray:
    """Per-pixel colour difference (0-255) between a frame and its background plate."""
    if frame.shape != plate.shape:
        raise ValueError("The background plate and the frame differ in size.")
    f, p = _blur(frame), _blur(plate)
    diff = _channel_max(cv2.absdiff(f, p))
    if warp is not None:
        moved = cv2.remap(p, warp.map_x, warp.map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        diff = np.where(warp.region, _tolerant_difference(f, moved), diff)
    return diff


def uniform_difference(frame: np.ndarray, border: int | None = None) -> np.ndarray:
    """Colour distance (0-255) of each pixel from the backdrop colour seen on the border."""
    h, w = frame.shape[:2]
    b = border or max(2, min(h, w) // 40)
    f = _blur(frame)
    if f.ndim == 2:
        f = f[:, :, None]
    edge = np.concatenate([f[:b].reshape(-1, f.shape[2]), f[-b:].reshape(-1, f.shape[2]),
                           f[:, :b].reshape(-1, f.shape[2]), f[:, -b:].reshape(-1, f.shape[2])])
    colour = np.median(edge, axis=0)
    return _channel_max(np.abs(f - colour[None, None, :].astype(np.float32)))


def refine_mask(raw: np.ndarray, strong: np.ndarray | None = None) -> np.ndarray:
    """Clean a raw mask without losing the object's holes or thin parts.

    `strong`: pixels that differ from the background very clearly (kept even on the edge).
    """
    h, w = raw.shape
    scale = max(1, round(min(h, w) / 480))
    raw8 = raw.astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(raw8)
    out = np.zeros((h, w), bool)
    if bw == 0:
        return out
    # Everything below stays within a few pixels of the raw mask: work on its rectangle with
    # a margin wider than every kernel reaches, so the result is the whole image's (a gap
    # open to the rectangle's border is open to the image's, through the empty outside).
    margin = 4 * scale + 8
    r0, r1, c0, c1 = (max(y - margin, 0), min(y + bh + margin, h),
                      max(x - margin, 0), min(x + bw + margin, w))
    box = (slice(r0, r1), slice(c0, c1))
    out[box] = _refine(raw8[box], None if strong is None else strong[box], scale)
    return out


def _refine(m: np.ndarray, strong: np.ndarray | None, scale: int) -> np.ndarray:
    raw = m.astype(bool)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((2 * scale + 1,) * 2, np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((2 * scale + 1,) * 2, np.uint8))
    # Drop specks: components far smaller than the biggest one.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.zeros(n, bool)
        keep[1:] = areas >= max(20 * scale * scale, 0.005 * areas.max())
        m = keep[labels].astype(np.uint8)
    # Fill only small holes (colour coincidences inside the object), not real openings.
    inv = (m == 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < 40 * scale * scale
    touches = np.zeros(n, bool)  # a gap open to the image border is background
    touches[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    fill = small & ~touches
    out = (m == 1) | fill[labels]
    # Blur and JPEG's halved chroma resolution spread every difference about a pixel past
    # the silhouette: pull the edge in by one pixel, but give back pixels that differ very
    # clearly, so that parts one or two pixels wide survive.
    eroded = cv2.erode(out.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    out_eroded = eroded.astype(bool)
    if strong is not None:
        # Thin parts that the opening or the pull-in removed, where they touch the object.
        near = cv2.dilate(out_eroded.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        give_back = raw & strong
        n, labels = cv2.connectedComponents(give_back.astype(np.uint8), connectivity=8)
        touching = np.zeros(n, bool)
        touching[np.unique(labels[give_back & near])] = True
        touching[0] = False
        out_eroded |= touching[labels]
    return out_eroded


def hysteresis(diff: np.ndarray, high: float, low: float) -> np.ndarray:
    """Pixels above `low` that are connected to a pixel above `high`.

    Dark object parts against a dark backdrop differ only a little, but they touch parts
    that differ a lot; JPEG noise differs a little too, but never a lot.
    """
    weak = (diff > low).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    strong = np.zeros(n, bool)
    strong[np.unique(labels[diff > high])] = True
    strong[0] = False
    return strong[labels]


def mask_from_plate(frame: np.ndarray, plate: np.ndarray, warp: PlatterWarp | None = None,
                    threshold: float = PLATE_THRESHOLD) -> np.ndarray:
    """Object mask (bool) of a frame from its background plate (RGB or BGR, same order)."""
    diff = plate_difference(frame, plate, warp)
    return refine_mask(hysteresis(diff, threshold, threshold * PLATE_LOW_FRACTION),
                       diff > threshold * STRONG_FACTOR)


def mask_uniform(frame: np.ndarray, threshold: float = UNIFORM_THRESHOLD) -> np.ndarray:
    """Object mask (bool) of a frame before a uniform backdrop, with no plate."""
    diff = uniform_difference(frame)
    return refine_mask(hysteresis(diff, threshold, threshold * PLATE_LOW_FRACTION),
                       diff > threshold * STRONG_FACTOR)


def object_mask(
    frame: np.ndarray,
    plate: np.ndarray | None = None,
    *,
    intrinsics: Intrinsics | None = None,
    pose0: Pose | None = None,
    plate_angle_deg: float = 0.0,
    frame_angle_deg: float = 0.0,
    platter_radius_m: float | None = None,
) -> np.ndarray:
    """The mask a scan stores for one frame: from the plate when there is one (re-projecting
    its platter top when the camera model and platter radius are known), else the
    uniform-backdrop fallback."""
    if plate is None:
        return mask_uniform(frame)
    return PlateMasker(plate, intrinsics, pose0, plate_angle_deg,
                       platter_radius_m).mask(frame, frame_angle_deg)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def encode_mask_png(mask: np.ndarray) -> bytes:
    """8-bit PNG, 255 = object, 0 = background (what COLMAP and nerfstudio read)."""
    ok, buf = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise ValueError("The mask could not be encoded as PNG.")
    return buf.tobytes()


def write_mask(path: Path | str, mask: np.ndarray) -> Path:
    path = Path(path)
    atomic_write_bytes(path, encode_mask_png(mask))
    return path


def read_mask(path: Path | str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"The mask {path} could not be read.")
    return img > 127
