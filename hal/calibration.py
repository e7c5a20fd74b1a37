"""Rig calibration from a ChArUco board lying on the platter, photographed at N angles.

What one fixed camera can learn from a board that only turns in the platter's plane:
every view shows the same 3D plane, so (Zhang) the views together pin down only two
constraints on the intrinsics. We therefore solve the focal length (fx = fy) and radial
distortion (k1, k2) with the principal point at the image centre, which is where it sits on
the Pi camera modules to within a few pixels. The camera's pose to the turntable axis comes
from the board's poses: they turn about one axis, which is the platter's normal through the
centre of the circles the board's points travel on. A final least-squares fit of the whole
rig model (focal length, distortion, distance, height, elevation, pan, roll and where the
board lies) to every detected corner gives the reprojection error we report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hal.atomic import atomic_write_bytes
from hal.calibration_board import BoardSpec, charuco_board
from hal.calibration_fit import BoardView, fit_rig, initial_focal, initial_rig
from hal.errors import HardwareError
from hal.geometry import Intrinsics, Pose, RigGeometry, camera_pose
from hal.mock.scene import scene_content

MIN_CORNERS = 8  # fewer corners than this on one photo give no reliable pose
MIN_VIEWS = 4
MAX_RMS_PX = 2.0  # a good fit is well under one pixel
# A board lying flat seen nearly face-on cannot tell focal length from distance; the fit's
# own standard deviation of the focal length says when (about 0.1 % at 20-30 degrees).
MAX_FOCAL_SIGMA = 0.008
UNSOLVABLE_MESSAGE = (
    "The calibration could not be solved from these photos: lay the board flat in the middle "
    "of the platter so the camera sees all of it at every angle, and try again."
)


class CalibrationError(HardwareError):
    default_message = "The calibration failed: check the board and the light, and try again."


def not_found_message(missing: int, total: int) -> str:
    return (
        f"The calibration board was not found in {missing} of {total} photos: lay it flat in "
        "the middle of the platter, light it evenly without glare, and try again."
    )


@dataclass(frozen=True)
class Calibration:
    intrinsics: Intrinsics
    geometry: RigGeometry
    rms_px: float
    board: BoardSpec
    angles_deg: tuple[float, ...] = ()
    views_used: int = 0
    focal_sigma_px: float = 0.0  # the fit's standard deviation of the focal length
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def pose(self, elevation_deg: float | None = None, angle_deg: float = 0.0) -> Pose:
        """Camera pose in the object frame for a ring elevation (None: as calibrated)."""
        return camera_pose(self.geometry, elevation_deg, angle_deg)

    def intrinsics_for(self, size: tuple[int, int]) -> Intrinsics:
        """Intrinsics at another capture size of the same sensor mode."""
        if tuple(size) == (self.intrinsics.width, self.intrinsics.height):
            return self.intrinsics
        return self.intrinsics.scaled(int(size[0]), int(size[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "intrinsics": self.intrinsics.to_dict(),
            "geometry": self.geometry.to_dict(),
            "rms_px": self.rms_px,
            "board": self.board.to_dict(),
            "angles_deg": list(self.angles_deg),
            "views_used": self.views_used,
            "focal_sigma_px": self.focal_sigma_px,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(
            intrinsics=Intrinsics.from_dict(d["intrinsics"]),
            geometry=RigGeometry.from_dict(d["geometry"]),
            rms_px=float(d["rms_px"]),
            board=BoardSpec.from_dict(d["board"]),
            angles_deg=tuple(float(a) for a in d.get("angles_deg", ())),
            views_used=int(d.get("views_used", 0)),
            focal_sigma_px=float(d.get("focal_sigma_px", 0.0)),
            created_at=str(d["created_at"]),
            id=str(d["id"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls.from_dict(json.loads(text))


def save_calibration(calibration: Calibration, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, calibration.to_json().encode("utf-8"))
    return path


def load_calibration(path: Path | str) -> Calibration:
    try:
        return Calibration.from_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(
            f"The rig calibration in {path} could not be read: run `scanner hal calibrate` "
            "again."
        ) from exc


def _gray(image: np.ndarray | Path | str) -> np.ndarray:
    if isinstance(image, (str, Path)):
        img = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise CalibrationError(f"The photo {image} could not be read: take it again.")
        return img
    img = np.asarray(image)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def detect_board(image: np.ndarray | Path | str,
                 board: BoardSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """ChArUco corners (N, 2) and their ids (N,) in one photo, or None when too few."""
    detector = cv2.aruco.CharucoDetector(charuco_board(board))
    corners, ids, _, _ = detector.detectBoard(_gray(image))
    if ids is None or len(ids) < MIN_CORNERS:
        return None
    return corners.reshape(-1, 2).astype(np.float64), ids.ravel().astype(int)


def solve_calibration(
    images: Sequence[np.ndarray | Path | str],
    angles_deg: Sequence[float],
    board: BoardSpec | None = None,
    min_views: int = MIN_VIEWS,
) -> Calibration:
    """Calibrate from photos of the board on the platter and the platter angle of each."""
    board = board or BoardSpec()
    if len(images) != len(angles_deg):
        raise ValueError("one angle per photo is needed")
    size = None
    views: list[BoardView] = []
    chess = charuco_board(board).getChessboardCorners().astype(np.float64)
    for image, angle in zip(images, angles_deg, strict=True):
        gray = _gray(image)
        if size is None:
            size = (gray.shape[1], gray.shape[0])
        elif size != (gray.shape[1], gray.shape[0]):
            raise CalibrationError("The calibration photos differ in size: take them again.")
        found = detect_board(gray, board)
        if found is not None:
            views.append(BoardView(float(angle), found[0], chess[found[1]]))
    missing = len(images) - len(views)
    if len(views) < max(min_views, 1) or size is None:
        raise CalibrationError(not_found_message(missing, len(images)))
    w, h = size
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    f0 = initial_focal(views, cx, cy, default=float(max(w, h)))
    k = np.array([[f0, 0, cx], [0, f0, cy], [0, 0, 1.0]])
    flags = (cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_PRINCIPAL_POINT
             | cv2.CALIB_FIX_ASPECT_RATIO | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K3)
    obj = [v.board_points.astype(np.float32) for v in views]
    img = [v.corners.astype(np.float32).reshape(-1, 1, 2) for v in views]
    try:
        _, k, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, (w, h), k, np.zeros(5),
                                                       flags=flags)
        intr = Intrinsics(float(k[0, 0]), float(k[1, 1]), cx, cy, w, h,
                          tuple(float(x) for x in dist.ravel()[:5]))
        geometry, placement = initial_rig(views, rvecs, tvecs, board)
        intr, geometry, rms, focal_sigma = fit_rig(views, intr, geometry, placement, board)
    except (cv2.error, np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
        raise CalibrationError(UNSOLVABLE_MESSAGE) from exc
    if not math.isfinite(rms) or rms > MAX_RMS_PX:
        # One rig model does not fit: the board slid, or the platter did not turn as told.
        raise CalibrationError(
            f"The photos do not fit one camera and turntable (error {rms:.1f} pixels): make "
            "sure the board cannot slide on the platter and the turntable turns freely, "
            "then try again."
        )
    if not focal_sigma < MAX_FOCAL_SIGMA * intr.fx:
        raise CalibrationError(
            f"The camera looks down on the board too steeply ({geometry.elevation_deg:.0f} "
            "degrees) to measure its lens: calibrate with the camera lower, between 10 and 50 "
            "degrees above the platter, then set it back."
        )
    return Calibration(intrinsics=intr, geometry=geometry, rms_px=rms, board=board,
                       angles_deg=tuple(v.angle_deg for v in views), views_used=len(views),
                       focal_sigma_px=focal_sigma)


def calibration_angles(views: int = 12) -> list[float]:
    return [i * 360.0 / views for i in range(views)]


def run_calibration(
    rig: Any,
    workdir: Path | str,
    views: int = 12,
    board: BoardSpec | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Turn the platter through `views` angles, photograph the board at each, and solve.

    The photos stay in `workdir` (calib_00.jpg, ...) so a failed calibration can be looked at.
    On the mock rig the camera's scene is switched to show the board while this runs.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths, angles = [], []
    with scene_content(rig.camera, "board"):
        for i, angle in enumerate(calibration_angles(views)):
            rig.turntable.move_to(angle)
            path = workdir / f"calib_{i:02d}.jpg"
            rig.camera.capture(path, exif={"angle_deg": rig.turntable.angle_deg})
            paths.append(path)
            angles.append(float(rig.turntable.angle_deg))
            if on_progress is not None:
                on_progress(i + 1, views)
    return solve_calibration(paths, angles, board)
