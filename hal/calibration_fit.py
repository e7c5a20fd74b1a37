"""The numbers behind hal.calibration: first guesses and the least-squares rig fit.

The rig model maps a board corner p (board coordinates) seen at platter angle θ to a pixel:
  X = Rz(ψ) [p_x − W/2, H/2 − p_y] + (b_x, b_y), z = board thickness   (board on the platter)
  x = project(K(f), dist(k1, k2), camera_pose(geometry, θ), X)
with the geometry's five numbers (distance, height, elevation, pan, roll). Its object frame
is the contract's: the camera sits on −Y at angle 0, so no rotation about Z is left free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from hal.calibration_board import BoardSpec
from hal.geometry import Intrinsics, RigGeometry, camera_pose, geometry_from_pose, rot_z


@dataclass
class BoardView:
    angle_deg: float
    corners: np.ndarray  # (N, 2) detected pixels
    board_points: np.ndarray  # (N, 3) the same corners in board coordinates


def initial_focal(views: list[BoardView], cx: float, cy: float, default: float) -> float:
    """Focal length from the plane-to-image homographies, principal point and aspect known.

    Each homography H = K [r1 r2 t] gives h1' w h2 = 0 and h1' w h1 = h2' w h2 for the
    image of the absolute conic w = diag(1/f², 1/f², 1); both are linear in 1/f².
    """
    a_rows, b_rows = [], []
    shift = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    for v in views:
        hm, _ = cv2.findHomography(v.board_points[:, :2], v.corners)
        if hm is None:
            continue
        hm = shift @ hm
        hm /= np.linalg.norm(hm)
        h1, h2 = hm[:, 0], hm[:, 1]
        a_rows += [h1[0] * h2[0] + h1[1] * h2[1],
                   h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2]
        b_rows += [h1[2] * h2[2], h1[2] ** 2 - h2[2] ** 2]
    a, b = np.array(a_rows), np.array(b_rows)
    if not len(a) or float(a @ a) == 0:
        return default
    w = -float(a @ b) / float(a @ a)
    return 1.0 / math.sqrt(w) if w > 0 else default


def _board_to_object(points: np.ndarray, board: BoardSpec, placement: np.ndarray) -> np.ndarray:
    bx, by, psi = placement
    lx = points[:, 0] - board.width_m / 2
    ly = board.height_m / 2 - points[:, 1]
    c, s = math.cos(math.radians(psi)), math.sin(math.radians(psi))
    return np.column_stack([c * lx - s * ly + bx, s * lx + c * ly + by,
                            np.full(len(points), board.thickness_m)])


def initial_rig(views: list[BoardView], rvecs, tvecs,
                board: BoardSpec) -> tuple[RigGeometry, np.ndarray]:
    """Rig geometry and board placement from per-photo board poses (cv2.calibrateCamera)."""
    rots = [cv2.Rodrigues(r)[0] for r in rvecs]
    ts = [np.asarray(t, float).ravel() for t in tvecs]
    # A face-up board's z axis (x along its columns, y down the page) points into the platter.
    n = -np.mean([r[:, 2] for r in rots], axis=0)
    n /= np.linalg.norm(n)
    e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n  # camera x is nearly level on a rig
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)  # e1 x e2 = n: a turn by +θ about n is a plane rotation by +θ
    offset = float(np.mean([n @ t for t in ts]))
    # The board's centre and a corner travel on circles about the axis: solve
    # c_i = a + Rot(θ_i) q_p for the axis point a and each point's arm q_p.
    probe = np.array([[board.width_m / 2, board.height_m / 2, 0.0], [0.0, 0.0, 0.0]])
    rows, rhs = [], []
    for r, t, v in zip(rots, ts, views, strict=True):
        th = math.radians(v.angle_deg)
        c, s = math.cos(th), math.sin(th)
        for j, p in enumerate(probe):
            x = r @ p + t
            u = np.array([x @ e1, x @ e2])
            for dim in range(2):
                row = np.zeros(2 + 2 * len(probe))
                row[dim] = 1.0
                rot = (c, -s) if dim == 0 else (s, c)
                row[2 + 2 * j], row[3 + 2 * j] = rot
                rows.append(row)
                rhs.append(u[dim])
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    axis = sol[0] * e1 + sol[1] * e2 + offset * n - board.thickness_m * n
    ez = n
    horiz = axis - (axis @ ez) * ez
    ey = horiz / np.linalg.norm(horiz)
    ex = np.cross(ey, ez)
    r0 = np.column_stack([ex, ey, ez])  # object (at angle 0) to camera
    geometry = geometry_from_pose(r0, axis)
    # Board placement: its centre and x axis in the object frame, averaged over views.
    centres, yaws = [], []
    for r, t, v in zip(rots, ts, views, strict=True):
        back = rot_z(-math.radians(v.angle_deg)) @ r0.T
        centres.append(back @ (r @ probe[0] + t - axis))
        xdir = back @ r[:, 0]
        yaws.append(math.atan2(xdir[1], xdir[0]))
    centre = np.mean(centres, axis=0)
    yaw = math.degrees(math.atan2(np.mean(np.sin(yaws)), np.mean(np.cos(yaws))))
    return geometry, np.array([centre[0], centre[1], yaw])


def _unpack(p: np.ndarray, base: Intrinsics) -> tuple[Intrinsics, RigGeometry, np.ndarray]:
    f, k1, k2, dist, height, elev, pan, roll = (float(x) for x in p[:8])
    intr = Intrinsics(f, f, base.cx, base.cy, base.width, base.height, (k1, k2, 0.0, 0.0, 0.0))
    target = height - dist * math.tan(math.radians(elev))
    return intr, RigGeometry(dist, height, target, pan, roll), p[8:11]


def _residuals(p: np.ndarray, base: Intrinsics, views: list[BoardView],
               board: BoardSpec) -> np.ndarray:
    intr, geometry, placement = _unpack(p, base)
    out = []
    for v in views:
        pose = camera_pose(geometry, None, v.angle_deg)
        pts = _board_to_object(v.board_points, board, placement)
        rvec, _ = cv2.Rodrigues(pose.R)
        proj, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), rvec, pose.t, intr.K,
                                    intr.dist_coeffs)
        out.append((proj.reshape(-1, 2) - v.corners).ravel())
    return np.concatenate(out)


_STEPS = np.array([1e-3, 1e-6, 1e-6, 1e-7, 1e-7, 1e-5, 1e-5, 1e-5, 1e-7, 1e-7, 1e-5])


def fit_rig(views: list[BoardView], intr: Intrinsics, geometry: RigGeometry,
            placement: np.ndarray, board: BoardSpec,
            iterations: int = 30) -> tuple[Intrinsics, RigGeometry, float, float]:
    """Levenberg-Marquardt on every corner of every view.

    Returns the fitted intrinsics and geometry, the RMS error in pixels and the standard
    deviation of the focal length in pixels.
    """
    k = list(intr.distortion) + [0.0, 0.0]
    p = np.array([intr.fx, k[0], k[1], geometry.distance_m, geometry.height_m,
                  geometry.elevation_deg, geometry.pan_deg, geometry.roll_deg,
                  *placement], dtype=np.float64)
    r = _residuals(p, intr, views, board)
    cost, lam = float(r @ r), 1e-3
    for _ in range(iterations):
        jac = np.empty((len(r), len(p)))
        for i, step in enumerate(_STEPS):
            q = p.copy()
            q[i] += step
            jac[:, i] = (_residuals(q, intr, views, board) - r) / step
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        for _ in range(8):
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -jtr)
            q = p + delta
            rq = _residuals(q, intr, views, board)
            if float(rq @ rq) < cost:
                p, r, cost, lam, improved = q, rq, float(rq @ rq), lam * 0.3, True
                break
            lam *= 10
        if not improved or np.all(np.abs(delta) < _STEPS * 1e-2):
            break
    intr, geometry, _ = _unpack(p, intr)
    rms = math.sqrt(cost / max(1, len(r) // 2))
    # Standard deviation of the focal length from the fit's own covariance: large when the
    # board is seen too nearly face-on to tell focal length from distance.
    dof = max(1, len(r) - len(p))
    try:
        cov = np.linalg.inv(jac.T @ jac) * (cost / dof)
        focal_sigma = float(math.sqrt(max(cov[0, 0], 0.0)))
    except np.linalg.LinAlgError:
        focal_sigma = float("inf")
    return intr, geometry, rms, focal_sigma
