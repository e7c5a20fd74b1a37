"""A bundle adjustment that knows it is a turntable: every frame of a ring is the same camera
turned by the platter's known angle, so a ring's poses share one correction (a rotation and a
translation of the camera, 6 numbers) instead of 6 free numbers per frame, plus one focal
length scale. Three rings give 19 unknowns where free poses would give 432.

The points are not unknowns of the solver: for each guess of the rig they are triangulated
again from all their observations (linear, in normalised coordinates), and the residuals are
the reprojection errors in pixels (robust). With 19 unknowns a finite-difference Jacobian
costs 20 triangulations, a few milliseconds each.

Photos of the object alone cannot show three things, which the calibration decides: turning
everything about the turntable axis, moving it along the axis, and its scale. A weak prior
keeps the solver away from them and `align_gauge` then puts them back exactly where the
calibration had them, so the refinement changes only what the photos do show.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from hal.geometry import Pose, undistort_normalised
from scanner_app.reconstruction.frames import FrameInput

PRIOR_RAD = np.radians(10.0)  # weak: only for the directions the photos do not fix
PRIOR_M = 0.05
FOCAL_PRIOR = 0.001  # a ChArUco calibration knows the focal length to a few tenths of a
# percent; photos of a small object barely tell focal length from distance (dolly zoom), and
# the platter's rim (platter_gauge) then sets the distance by the focal length: on the mock a
# 0.3 % prior let the focal drift 0.3 % and the cameras 1 mm closer (perf-H2).
ROBUST_PX = 2.0
OUTLIER_PX = 4.0


@dataclass
class RigFit:
    poses: dict[str, Pose]
    focal_scale: float
    points: np.ndarray
    rms_px: float
    corrections: dict[int, tuple[float, float]]  # ring -> (degrees, millimetres)
    observations_used: int = 0


def _rotation(vector: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(vector, dtype=np.float64))[0]


def corrected(pose: Pose, omega: np.ndarray, tau: np.ndarray) -> Pose:
    """The pose with a correction applied in camera coordinates (x' = dR x + tau)."""
    turn = _rotation(omega)
    return Pose(turn @ pose.R, turn @ pose.t + tau)


def triangulate(rotations: np.ndarray, translations: np.ndarray, fi: np.ndarray,
                pi: np.ndarray, xn: np.ndarray, n_points: int) -> np.ndarray:
    """Linear triangulation of every point from its observations in normalised coordinates
    (x = X/Z, y = Y/Z in the camera): per point, the least-squares solution of
    (x r3 - r1) X = t1 - x t3 and (y r3 - r2) X = t2 - y t3 over its observations."""
    r = rotations[fi]
    t = translations[fi]
    rows = np.concatenate([xn[:, :1] * r[:, 2] - r[:, 0], xn[:, 1:] * r[:, 2] - r[:, 1]])
    rhs = np.concatenate([t[:, 0] - xn[:, 0] * t[:, 2], t[:, 1] - xn[:, 1] * t[:, 2]])
    owner = np.concatenate([pi, pi])
    ata = np.empty((n_points, 3, 3))
    atb = np.empty((n_points, 3))
    for i in range(3):  # sums per point by bincount (np.add.at is many times slower)
        atb[:, i] = np.bincount(owner, rows[:, i] * rhs, minlength=n_points)
        for j in range(i, 3):
            ata[:, i, j] = ata[:, j, i] = np.bincount(owner, rows[:, i] * rows[:, j],
                                                      minlength=n_points)
    ata += np.eye(3) * 1e-12
    return np.linalg.solve(ata, atb[:, :, None])[:, :, 0]


def fit(frames: list[FrameInput], observations: list[tuple[int, int, float, float]],
        points: np.ndarray | None = None, refine_focal: bool = True) -> RigFit:
    """`observations`: (frame index, point index, u, v) in OpenCV pixels. `points` is
    accepted for the caller's convenience and not needed (the fit triangulates)."""
    rings = sorted({f.ring for f in frames})
    ring_of = np.array([rings.index(f.ring) for f in frames])
    obs = np.array(observations, dtype=np.float64).reshape(-1, 4)
    fi, pi = obs[:, 0].astype(int), obs[:, 1].astype(int)
    # Points seen fewer than twice cannot be triangulated: drop them.
    pi_unique, pi = np.unique(pi, return_inverse=True)
    n_rings = len(rings)
    intr = frames[0].intrinsics
    fx, fy, cx, cy = intr.fx, intr.fy, intr.cx, intr.cy
    xd, yd = (obs[:, 2] - cx) / fx, (obs[:, 3] - cy) / fy
    if intr.has_distortion:
        xd, yd = undistort_normalised(xd, yd, intr.distortion)
    pixels = np.stack([fx * xd + cx, fy * yd + cy], axis=1)  # undistorted pixels
    R0 = np.array([f.pose.R for f in frames])  # noqa: N806 - the usual name
    t0 = np.array([f.pose.t for f in frames])
    keep = np.ones(len(obs), bool)

    def poses_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        corr = x[:6 * n_rings].reshape(n_rings, 6)
        turns = np.array([_rotation(c[:3]) for c in corr])
        rot = np.matmul(turns[ring_of], R0)
        trans = np.einsum("fij,fj->fi", turns[ring_of], t0) + corr[ring_of, 3:]
        return rot, trans

    def reproject(x: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rot, trans = poses_of(x)
        scale = x[6 * n_rings]
        xn = np.stack([(pixels[use, 0] - cx) / (scale * fx),
                       (pixels[use, 1] - cy) / (scale * fy)], axis=1)
        f_use, p_use = fi[use], pi[use]
        pts = triangulate(rot, trans, f_use, p_use, xn, len(pi_unique))
        cam = np.einsum("oij,oj->oi", rot[f_use], pts[p_use]) + trans[f_use]
        z = np.maximum(cam[:, 2], 1e-6)
        u = scale * fx * cam[:, 0] / z + cx
        v = scale * fy * cam[:, 1] / z + cy
        return np.stack([u - pixels[use, 0], v - pixels[use, 1]], axis=1), pts

    def residuals(x: np.ndarray) -> np.ndarray:
        error, _ = reproject(x, keep)
        corr = x[:6 * n_rings].reshape(n_rings, 6)
        prior = np.concatenate([corr[:, :3].ravel() / PRIOR_RAD, corr[:, 3:].ravel() / PRIOR_M,
                                [(x[6 * n_rings] - 1.0) /
                                 (FOCAL_PRIOR if refine_focal else 1e-6)]])
        return np.concatenate([error.ravel(), prior])

    x = np.concatenate([np.zeros(6 * n_rings), [1.0]])
    for _round in range(3):  # fit, drop observations far off, fit again
        x = least_squares(residuals, x, loss="soft_l1", f_scale=ROBUST_PX, method="trf",
                          x_scale=np.concatenate([np.tile([1e-2] * 3 + [1e-2] * 3, n_rings),
                                                  [1e-2]]),
                          diff_step=1e-6, max_nfev=200).x
        error, _ = reproject(x, np.ones(len(obs), bool))
        distance = np.hypot(error[:, 0], error[:, 1])
        limit = max(OUTLIER_PX, 3.0 * float(np.median(distance)))
        still = distance <= limit
        seen = np.bincount(pi[still], minlength=len(pi_unique))
        still &= seen[pi] >= 2  # a point needs two observations to be triangulated
        if np.array_equal(still, keep):
            break
        keep = still
    error, pts = reproject(x, keep)
    rot, trans = poses_of(x)
    fitted = {f.name: Pose(rot[i], trans[i]) for i, f in enumerate(frames)}
    aligned = align_gauge(fitted, {f.name: f.pose for f in frames})
    corr = x[:6 * n_rings].reshape(n_rings, 6)
    return RigFit(poses=aligned, focal_scale=float(x[6 * n_rings]), points=pts,
                  rms_px=float(np.sqrt(np.mean(np.sum(error ** 2, axis=1)))),
                  corrections={rings[r]: (float(np.degrees(np.linalg.norm(corr[r, :3]))),
                                          float(1000 * np.linalg.norm(corr[r, 3:])))
                               for r in range(n_rings)},
                  observations_used=int(keep.sum()))


def gauge_transform(pose: Pose, angle: float, lift: float, scale: float) -> Pose:
    """The pose after the object frame is turned by `angle` (radians) about Z, moved up by
    `lift` (metres) and scaled by `scale`: the same photos, another choice of frame."""
    c, s = np.cos(angle), np.sin(angle)
    turn_back = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # Rz(-angle)
    rotation = pose.R @ turn_back
    return Pose(rotation, scale * pose.t - lift * (pose.R @ np.array([0.0, 0.0, 1.0])))


def align_gauge(poses: dict[str, Pose], reference: dict[str, Pose]) -> dict[str, Pose]:
    """`poses` in the frame choice (turn about Z, height, scale) closest to `reference`'s
    camera centres: what the photos cannot decide is taken from the reference."""
    names = [n for n in poses if n in reference]
    if len(names) < 2:
        return dict(poses)
    centres = np.array([poses[n].centre for n in names])
    targets = np.array([reference[n].centre for n in names])

    def residuals(p: np.ndarray) -> np.ndarray:
        c, s = np.cos(p[0]), np.sin(p[0])
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        moved = p[2] * centres @ turn.T + np.array([0.0, 0.0, p[1]])
        return (moved - targets).ravel()

    angle, lift, scale = least_squares(residuals, np.array([0.0, 0.0, 1.0])).x
    return {n: gauge_transform(p, angle, lift, scale) for n, p in poses.items()}
