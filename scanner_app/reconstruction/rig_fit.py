"""A bundle adjustment that knows it is a turntable: every frame of a ring is the same camera
turned by the platter's known angle, so a ring's poses share one correction (a rotation and a
translation of the camera, 6 numbers) instead of 6 free numbers per frame. Tracks on a small
object pin down a single frame's pose poorly (turning the camera and moving it sideways look
alike), but a ring's 24 frames together pin down its one correction well.

Unknowns: the corrections of each ring, one focal-length scale, and the points. Residuals:
reprojection errors in pixels (Huber-robust), and a weak prior on each correction (2 degrees,
5 mm), which only decides what the images cannot: turning the whole model about the axis,
moving it along the axis, and its scale (the object frame's own choice, set by calibration).
Solved by scipy's least_squares with the sparse Jacobian's pattern given.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

from hal.geometry import Pose
from scanner_app.reconstruction.frames import FrameInput

PRIOR_RAD = np.radians(2.0)
PRIOR_M = 0.005
HUBER_PX = 1.0
FOCAL_PRIOR = 0.01  # a calibrated focal length is known to about 1 %


@dataclass
class RigFit:
    poses: dict[str, Pose]
    focal_scale: float
    points: np.ndarray
    rms_px: float
    corrections: dict[int, tuple[float, float]]  # ring -> (degrees, millimetres)


def _rotation(vector: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(vector, dtype=np.float64))[0]


def corrected(pose: Pose, omega: np.ndarray, tau: np.ndarray) -> Pose:
    """The pose with a correction applied in camera coordinates (x' = dR x + tau)."""
    turn = _rotation(omega)
    return Pose(turn @ pose.R, turn @ pose.t + tau)


def fit(frames: list[FrameInput], observations: list[tuple[int, int, float, float]],
        points: np.ndarray, refine_focal: bool = True) -> RigFit:
    """`observations`: (frame index, point index, u, v) in OpenCV pixels; `points` (N, 3)."""
    rings = sorted({f.ring for f in frames})
    ring_of = np.array([rings.index(f.ring) for f in frames])
    obs = np.array(observations, dtype=np.float64)
    fi, pi = obs[:, 0].astype(int), obs[:, 1].astype(int)
    uv = obs[:, 2:4]
    n_rings, n_points = len(rings), len(points)
    R0 = np.array([f.pose.R for f in frames])  # noqa: N806 - the usual name
    t0 = np.array([f.pose.t for f in frames])
    intr = frames[0].intrinsics
    fx, fy, cx, cy = intr.fx, intr.fy, intr.cx, intr.cy

    def unpack(x: np.ndarray):
        corr = x[:6 * n_rings].reshape(n_rings, 6)
        scale = x[6 * n_rings]
        pts = x[6 * n_rings + 1:].reshape(n_points, 3)
        return corr, scale, pts

    def residuals(x: np.ndarray) -> np.ndarray:
        corr, scale, pts = unpack(x)
        turns = np.array([_rotation(c[:3]) for c in corr])
        rot = np.matmul(turns[ring_of], R0)
        trans = np.einsum("fij,fj->fi", turns[ring_of], t0) + corr[ring_of, 3:]
        cam = np.einsum("oij,oj->oi", rot[fi], pts[pi]) + trans[fi]
        z = np.maximum(cam[:, 2], 1e-6)
        u = scale * fx * cam[:, 0] / z + cx
        v = scale * fy * cam[:, 1] / z + cy
        reproj = np.concatenate([u - uv[:, 0], v - uv[:, 1]])
        prior = np.concatenate([corr[:, :3].ravel() / PRIOR_RAD, corr[:, 3:].ravel() / PRIOR_M,
                                [(scale - 1.0) / (FOCAL_PRIOR if refine_focal else 1e-6)]])
        return np.concatenate([reproj, prior])

    n_obs = len(obs)
    n_params = 6 * n_rings + 1 + 3 * n_points
    pattern = lil_matrix((2 * n_obs + 6 * n_rings + 1, n_params), dtype=np.int8)
    rows = np.arange(n_obs)
    for block in (rows, rows + n_obs):
        for k in range(6):
            pattern[block, 6 * ring_of[fi] + k] = 1
        pattern[block, 6 * n_rings] = 1
        for k in range(3):
            pattern[block, 6 * n_rings + 1 + 3 * pi + k] = 1
    for k in range(6 * n_rings + 1):
        pattern[2 * n_obs + k, k] = 1
    x0 = np.concatenate([np.zeros(6 * n_rings), [1.0], points.ravel()])
    result = least_squares(residuals, x0, jac_sparsity=pattern.tocsr(), loss="soft_l1",
                           f_scale=3 * HUBER_PX, method="trf", max_nfev=120,
                           tr_solver="lsmr")
    corr, scale, pts = unpack(result.x)
    poses = {f.name: corrected(f.pose, corr[ring_of[i], :3], corr[ring_of[i], 3:])
             for i, f in enumerate(frames)}
    reproj = result.fun[:2 * n_obs]
    return RigFit(poses=poses, focal_scale=float(scale), points=pts,
                  rms_px=float(np.sqrt(np.mean(reproj[:n_obs] ** 2 + reproj[n_obs:] ** 2))),
                  corrections={rings[r]: (float(np.degrees(np.linalg.norm(corr[r, :3]))),
                                          float(1000 * np.linalg.norm(corr[r, 3:])))
                               for r in range(n_rings)})
