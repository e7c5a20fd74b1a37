"""Camera poses in the object frame, and their COLMAP / nerfstudio spellings.

Object frame (see CONTRACT.md): origin at the platter centre on its surface, Z up along the
turntable axis, metres. The frame turns with the platter, so turning the platter by +θ
(counter-clockwise seen from above) is the camera orbiting the object by −θ.

At angle 0 the camera stands on the −Y side looking towards +Y: image x (right) is +X and
image up is roughly +Z. Camera matrices follow OpenCV: x right, y down, z forward, and
`x_cam = R @ X_obj + t` (world-to-camera), which is also COLMAP's convention.

A ring's elevation moves the camera on an arc around the look-at point (the pivot of a tilt
arm, or where an operator re-aims a hand-set camera), keeping its distance to that point.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])  # flips camera y (down -> up) and z (fwd -> back)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera with OpenCV distortion (k1, k2, p1, p2, k3).

    cx, cy use OpenCV's pixel convention: the centre of the top-left pixel is (0, 0).
    COLMAP and nerfstudio put it at (0.5, 0.5); their helpers below add the half pixel.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the usual name of the camera matrix
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def dist_coeffs(self) -> np.ndarray:
        return np.array(self.distortion, dtype=np.float64)

    @property
    def has_distortion(self) -> bool:
        return any(abs(k) > 0 for k in self.distortion)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same lens at another output size (the sensor is scaled, not cropped)."""
        sx, sy = width / self.width, height / self.height
        # Scaling acts on pixel-corner coordinates, hence the half-pixel shifts.
        return Intrinsics(
            fx=self.fx * sx, fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5,
            width=int(width), height=int(height), distortion=tuple(self.distortion),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["distortion"] = [float(k) for k in self.distortion]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intrinsics:
        return cls(
            fx=float(d["fx"]), fy=float(d["fy"]), cx=float(d["cx"]), cy=float(d["cy"]),
            width=int(d["width"]), height=int(d["height"]),
            distortion=tuple(float(k) for k in d.get("distortion", (0.0,) * 5)),
        )


@dataclass(frozen=True)
class RigGeometry:
    """Where the camera stands relative to the turntable, at the rig's reference elevation.

    distance_m: horizontal distance from the camera centre to the turntable axis;
    height_m: camera centre above the platter surface;
    target_height_m: the point on the axis the camera aims at (and the tilt arm's pivot);
    pan_deg / roll_deg: small residual turns of a real camera about its own y and z axes
    (0 for an ideal rig; calibration measures them).
    """

    distance_m: float = 0.35
    height_m: float = 0.045 + 0.35 * math.tan(math.radians(20.0))
    target_height_m: float = 0.045
    pan_deg: float = 0.0
    roll_deg: float = 0.0

    @classmethod
    def from_elevation(
        cls, distance_m: float, elevation_deg: float, target_height_m: float = 0.0,
        pan_deg: float = 0.0, roll_deg: float = 0.0,
    ) -> RigGeometry:
        height = target_height_m + distance_m * math.tan(math.radians(elevation_deg))
        return cls(distance_m, height, target_height_m, pan_deg, roll_deg)

    @property
    def elevation_deg(self) -> float:
        """How far the camera looks down onto the look-at point (degrees above horizontal)."""
        return math.degrees(math.atan2(self.height_m - self.target_height_m, self.distance_m))

    @property
    def arm_radius_m(self) -> float:
        return math.hypot(self.distance_m, self.height_m - self.target_height_m)

    def at_elevation(self, elevation_deg: float) -> RigGeometry:
        """The same rig with the camera moved along its arc to another elevation."""
        e = math.radians(elevation_deg)
        r = self.arm_radius_m
        return RigGeometry(r * math.cos(e), self.target_height_m + r * math.sin(e),
                           self.target_height_m, self.pan_deg, self.roll_deg)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["elevation_deg"] = self.elevation_deg
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RigGeometry:
        return cls(float(d["distance_m"]), float(d["height_m"]), float(d["target_height_m"]),
                   float(d.get("pan_deg", 0.0)), float(d.get("roll_deg", 0.0)))


@dataclass(frozen=True, eq=False)  # arrays do not compare to one bool; use np.allclose
class Pose:
    """A camera pose: `x_cam = R @ X_obj + t` (OpenCV axes)."""

    R: np.ndarray  # noqa: N815 - the usual name
    t: np.ndarray
    _centre: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_centre", -self.R.T @ self.t)

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in the object frame."""
        return self._centre.copy()

    @property
    def world_to_camera(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.t
        return m

    @property
    def camera_to_world(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R.T, self._centre
        return m

    def __iter__(self):  # `R, t = pose` reads like the (R, t) pair OpenCV returns
        return iter((self.R, self.t))


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def look_rotation(elevation_deg: float) -> np.ndarray:
    """Rows are the camera axes in the object frame for a camera on −Y aimed at the axis."""
    e = math.radians(elevation_deg)
    ce, se = math.cos(e), math.sin(e)
    return np.array([[1.0, 0.0, 0.0], [0.0, -se, -ce], [0.0, ce, -se]])


def camera_pose(
    geometry: RigGeometry, elevation_deg: float | None = None, angle_deg: float = 0.0
) -> Pose:
    """World-to-camera pose for a ring elevation (None: the rig's own) and platter angle."""
    g = geometry if elevation_deg is None else geometry.at_elevation(elevation_deg)
    centre_lab = np.array([0.0, -g.distance_m, g.height_m])
    r_cam = (rot_z(math.radians(g.roll_deg)) @ rot_y(math.radians(g.pan_deg))
             @ look_rotation(g.elevation_deg))
    # The platter turned by θ carries object points to Rz(θ) X in the fixed lab frame.
    R = r_cam @ rot_z(math.radians(angle_deg))  # noqa: N806
    return Pose(R, -r_cam @ centre_lab)


def geometry_from_pose(R0: np.ndarray, t0: np.ndarray) -> RigGeometry:  # noqa: N803
    """Invert `camera_pose(g, None, 0)`: the rig geometry of a pose at angle 0.

    The pose's camera centre must lie on the −Y half of the YZ plane, which is how the
    object frame's X axis is chosen (calibration builds its frame that way).
    """
    centre = -R0.T @ t0
    distance, height = math.hypot(centre[0], centre[1]), float(centre[2])
    d = R0.T @ np.array([0.0, 0.0, 1.0])  # optical axis in the object frame
    elevation = math.atan2(-d[2], d[1])
    pan = math.atan2(-d[0], math.hypot(d[1], d[2]))
    m = R0 @ look_rotation(math.degrees(elevation)).T @ rot_y(pan).T
    roll = math.atan2(m[1, 0], m[0, 0])
    target = height - distance * math.tan(elevation)
    return RigGeometry(distance, height, target, math.degrees(pan), math.degrees(roll))


# -- COLMAP ------------------------------------------------------------------------------
def rotation_to_qvec(R: np.ndarray) -> np.ndarray:  # noqa: N803
    """Unit quaternion (w, x, y, z) with w >= 0 for a rotation matrix (COLMAP's qvec)."""
    m = np.asarray(R, dtype=np.float64)
    # Symmetric 4x4 whose top eigenvector is the quaternion (robust for every rotation).
    k = np.array([
        [m[0, 0] - m[1, 1] - m[2, 2], 0, 0, 0],
        [m[1, 0] + m[0, 1], m[1, 1] - m[0, 0] - m[2, 2], 0, 0],
        [m[2, 0] + m[0, 2], m[2, 1] + m[1, 2], m[2, 2] - m[0, 0] - m[1, 1], 0],
        [m[1, 2] - m[2, 1], m[2, 0] - m[0, 2], m[0, 1] - m[1, 0], m[0, 0] + m[1, 1] + m[2, 2]],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(k)
    x, y, z, w = vecs[:, np.argmax(vals)]
    q = np.array([w, -x, -y, -z])  # that eigenvector is the inverse (transposed) rotation
    return -q if q[0] < 0 else q


def qvec_to_rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def colmap_image_pose(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """(qvec wxyz, tvec) for a line of COLMAP's images.txt."""
    return rotation_to_qvec(pose.R), np.asarray(pose.t, dtype=np.float64).copy()


def colmap_camera(intrinsics: Intrinsics) -> tuple[str, list[float]]:
    """(model, params) for COLMAP's cameras.txt: PINHOLE, or OPENCV when there is distortion."""
    i = intrinsics
    base = [i.fx, i.fy, i.cx + 0.5, i.cy + 0.5]
    if not i.has_distortion:
        return "PINHOLE", base
    k1, k2, p1, p2 = (list(i.distortion) + [0.0] * 4)[:4]
    # COLMAP's OPENCV model has no k3; FULL_OPENCV does.
    if len(i.distortion) > 4 and abs(i.distortion[4]) > 0:
        extra = list(i.distortion[4:]) + [0.0] * (4 - len(i.distortion[4:]))
        return "FULL_OPENCV", base + [k1, k2, p1, p2] + extra[:4]
    return "OPENCV", base + [k1, k2, p1, p2]


def colmap_cameras_line(camera_id: int, intrinsics: Intrinsics) -> str:
    """One line of cameras.txt: CAMERA_ID MODEL WIDTH HEIGHT PARAMS..."""
    model, params = colmap_camera(intrinsics)
    return " ".join([str(camera_id), model, str(intrinsics.width), str(intrinsics.height),
                     *(repr(float(p)) for p in params)])


def colmap_images_lines(image_id: int, pose: Pose, camera_id: int, name: str) -> str:
    """The two lines of images.txt for one image (the second, its 2D points, empty)."""
    q, t = colmap_image_pose(pose)
    nums = " ".join(repr(float(x)) for x in (*q, *t))
    return f"{image_id} {nums} {camera_id} {name}\n\n"


# -- nerfstudio / instant-ngp -----------------------------------------------------------
def nerfstudio_transform(pose: Pose) -> list[list[float]]:
    """The frame's `transform_matrix`: camera-to-world with OpenGL axes (y up, z back)."""
    m = pose.camera_to_world
    m[:3, :3] = m[:3, :3] @ OPENCV_TO_OPENGL
    return m.tolist()


def nerfstudio_camera(intrinsics: Intrinsics) -> dict[str, Any]:
    """Top-level intrinsics keys of transforms.json (pixel centres at +0.5, like COLMAP)."""
    i = intrinsics
    k = (list(i.distortion) + [0.0] * 5)[:5]
    return {
        "camera_model": "OPENCV", "fl_x": i.fx, "fl_y": i.fy,
        "cx": i.cx + 0.5, "cy": i.cy + 0.5, "w": i.width, "h": i.height,
        "k1": k[0], "k2": k[1], "p1": k[2], "p2": k[3], "k3": k[4],
    }


def distort_normalised(x: np.ndarray, y: np.ndarray,
                       distortion: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's lens model on normalised coordinates (z = 1 plane)."""
    k1, k2, p1, p2, k3 = (list(distortion) + [0.0] * 5)[:5]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def undistort_normalised(xd: np.ndarray, yd: np.ndarray, distortion: tuple[float, ...],
                         iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `distort_normalised` by fixed-point iteration (converges for real lenses)."""
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        dx, dy = distort_normalised(x, y, distortion)
        x, y = x + (xd - dx), y + (yd - dy)
    return x, y


def nerfstudio_frame(file_path: str, pose: Pose, mask_path: str | None = None,
                     **extra: Any) -> dict[str, Any]:
    """One entry of transforms.json's "frames" (paths relative to the file)."""
    frame: dict[str, Any] = {"file_path": file_path, "transform_matrix": nerfstudio_transform(pose)}
    if mask_path is not None:
        frame["mask_path"] = mask_path
    frame.update(extra)
    return frame


def project(intrinsics: Intrinsics, pose: Pose, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of object-frame points (N, 3), distortion included."""
    import cv2  # local: geometry itself needs only numpy

    rvec, _ = cv2.Rodrigues(pose.R)
    pts, _ = cv2.projectPoints(np.asarray(points, dtype=np.float64).reshape(-1, 1, 3), rvec,
                               np.asarray(pose.t, dtype=np.float64), intrinsics.K,
                               intrinsics.dist_coeffs)
    return pts.reshape(-1, 2)
