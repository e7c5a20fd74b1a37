"""Scale and height of the refined poses from the platter's rim.

Photos of the object cannot show the scale of the object frame or its height along the
turntable axis (rig_fit keeps the calibration's). The platter can: the edge of its top is a
circle of known radius on the plane z = 0, centred on the axis. Given each frame's refined
rotation and focal length, the rim's image depends only on the camera's distance and height,
that is on one scale `s` and one lift `h` shared by all frames (rig_fit.gauge_transform).

The fit looks for the (s, h) whose projected rim lies on a brightness step across it in the
photos (mean brightness just outside against just inside, a few pixels each way), on the
near half of the rim (where the top meets the platter's side; the far half meets whatever
lies behind) and away from the object's mask: a coarse grid first, taking the strong peak
with the largest rim (a painted ring inside the top can show a stronger edge than the rim,
never a larger circle), then Nelder-Mead. Where no clear rim is found (no platter in view, a
plain platter on a backdrop of its colour), `fit` returns None and the calibration's scale
and height are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from scipy.optimize import minimize

from hal.geometry import Pose
from scanner_app.reconstruction.frames import FrameInput, project_points
from scanner_app.reconstruction.rig_fit import gauge_transform

RIM_SAMPLES = 360
MAX_FRAMES = 24
MASK_MARGIN_PX = 12
MIN_RIM_POINTS = 300
MIN_CONTRAST = 1.5  # the best rim's edge strength over the median of the grid's
STRONG_SHARE = 0.7  # a peak this close to the best counts as a candidate rim
SCALE_RANGE = 0.04
LIFT_RANGE_M = 0.012
# Where a step is looked for across the rim (inner then outer side): narrow, so that a
# painted ring a few millimetres inside the rim does not fall into the inner band.
STEP_OFFSETS = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])  # times the blur (1 px at 640)


@dataclass
class PlatterGauge:
    scale: float
    lift_m: float
    frames_used: int
    rim_points: int
    contrast: float

    def apply(self, pose: Pose) -> Pose:
        return gauge_transform(pose, 0.0, self.lift_m, self.scale)


class _Rim:
    """One frame's gradient images and its visible rim points at the starting gauge."""

    def __init__(self, frame: FrameInput, radius_m: float):
        grey = cv2.cvtColor(frame.rgb(), cv2.COLOR_RGB2GRAY).astype(np.float32)
        sigma = max(1.0, frame.intrinsics.width / 640)
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
        self.grey, self.sigma = grey, sigma
        self.frame = frame
        angles = np.linspace(0, 2 * np.pi, RIM_SAMPLES, endpoint=False)
        circle = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
        self.rim, self.outer = radius_m * circle, radius_m * 1.01 * circle
        u, v, z = project_points(frame.intrinsics, frame.pose, self.rim)
        h, w = grey.shape
        margin = 4 * sigma + 2
        centre_depth = float(frame.pose.t[2])  # the platter centre's depth
        keep = (z > 0) & (z < centre_depth) & (u > margin) & (v > margin) & (u < w - 1 - margin) & (
            v < h - 1 - margin)
        mask = frame.mask()
        if mask is not None and mask.shape == grey.shape:
            near = cv2.dilate(mask.astype(np.uint8),
                              np.ones((2 * MASK_MARGIN_PX + 1,) * 2, np.uint8)) > 0
            inside = near[np.clip(v, 0, h - 1).astype(int), np.clip(u, 0, w - 1).astype(int)]
            keep &= ~inside
        self.keep = keep

    def strength(self, scale: float, lift: float) -> np.ndarray:
        pose = gauge_transform(self.frame.pose, 0.0, lift, scale)
        u, v, _ = project_points(self.frame.intrinsics, pose, self.rim[self.keep])
        uo, vo, _ = project_points(self.frame.intrinsics, pose, self.outer[self.keep])
        nx, ny = uo - u, vo - v
        norm = np.maximum(np.hypot(nx, ny), 1e-9)
        nx, ny = nx / norm, ny / norm
        off = STEP_OFFSETS[:, None] * self.sigma
        mx = (u[None, :] + off * nx[None, :]).astype(np.float32)
        my = (v[None, :] + off * ny[None, :]).astype(np.float32)
        values = cv2.remap(self.grey, mx, my, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        half = len(STEP_OFFSETS) // 2
        return np.abs(values[half:].mean(axis=0) - values[:half].mean(axis=0))


def fit(frames: list[FrameInput], radius_m: float) -> PlatterGauge | None:
    """The scale and lift that put the platter's rim (radius `radius_m`) on its edge in the
    photos, for frames whose poses and intrinsics are the refined ones; None when no clear
    rim is seen."""
    if radius_m <= 0 or not frames:
        return None
    step = max(1, len(frames) // MAX_FRAMES)
    rims = [_Rim(f, radius_m) for f in frames[::step]]
    rims = [r for r in rims if r.keep.sum() >= 20]
    count = int(sum(r.keep.sum() for r in rims))
    if count < MIN_RIM_POINTS:
        return None

    def score(p: np.ndarray) -> float:
        return float(np.mean(np.concatenate([r.strength(p[0], p[1]) for r in rims])))

    scales = np.linspace(1 - SCALE_RANGE, 1 + SCALE_RANGE, 33)
    lifts = np.linspace(-LIFT_RANGE_M, LIFT_RANGE_M, 25)
    scores = np.array([[score(np.array([s, h])) for h in lifts] for s in scales])
    start = np.array(_outermost(scores, scales, lifts))
    best = minimize(lambda p: -score(p), start, method="Nelder-Mead",
                    options={"initial_simplex": [start, start + [0.003, 0], start + [0, 0.0008]],
                             "xatol": 1e-5, "fatol": 1e-4, "maxiter": 300})
    scale, lift = float(best.x[0]), float(best.x[1])
    contrast = -float(best.fun) / max(float(np.median(scores)), 1e-9)
    if (contrast < MIN_CONTRAST or abs(scale - 1) > SCALE_RANGE
            or abs(lift) > LIFT_RANGE_M):
        return None
    return PlatterGauge(scale, lift, len(rims), count, contrast)


def _outermost(scores: np.ndarray, scales: np.ndarray, lifts: np.ndarray
               ) -> tuple[float, float]:
    """The grid's strong peak with the largest rim in the photos (the smallest scale): a
    painted ring or groove inside the top can show a stronger edge than the rim, never a
    larger circle."""
    best = scores.max(axis=1)  # per scale, over the lifts
    strong = best >= STRONG_SHARE * best.max()
    for i in range(len(scales)):
        peak = (i == 0 or best[i] >= best[i - 1]) and (
            i == len(scales) - 1 or best[i] >= best[i + 1])
        if strong[i] and peak:
            return float(scales[i]), float(lifts[int(np.argmax(scores[i]))])
    i = int(np.argmax(best))
    return float(scales[i]), float(lifts[int(np.argmax(scores[i]))])


def apply(frames: list[FrameInput], gauge: PlatterGauge | None) -> list[FrameInput]:
    """The frames with their poses moved to the platter's scale and height."""
    if gauge is None:
        return list(frames)
    return [replace(f, pose=gauge.apply(f.pose)) for f in frames]
