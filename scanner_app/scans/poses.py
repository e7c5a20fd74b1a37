"""Known poses: the camera model of a scan (intrinsics + where the camera stands relative to
the turntable axis) and from it each frame's pose in the object frame (CONTRACT: origin at the
platter centre on its surface, Z up the axis, metres; the platter turning by θ is the camera
orbiting by −θ).

The model comes from the rig's calibration (`scanner hal calibrate`), the one current when the
scan started (a resume keeps it, by id). Without one the poses are NOMINAL: the geometry the
rig reports (the mock camera reports its true scene) or the default rig geometry, and a
nominal lens; the metadata and the data-set README say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.calibration import CalibrationError, load_calibration
from hal.geometry import Intrinsics, Pose, RigGeometry, camera_pose, colmap_image_pose
from scanner_app.scans.calibrations import calibration_dir, current_calibration

# A lens to assume when nothing better is known: about the Camera Module 3's 66° across.
NOMINAL_HFOV_DEG = 66.0


@dataclass(frozen=True)
class CameraModel:
    source: str  # "calibration" or "nominal"
    intrinsics: Intrinsics  # at the size it was measured or assumed at
    geometry: RigGeometry  # at the rig's reference elevation
    calibration_id: str | None = None
    rms_px: float | None = None
    note: str | None = None  # why the poses are nominal

    @property
    def nominal(self) -> bool:
        return self.source != "calibration"

    def intrinsics_for(self, size: tuple[int, int]) -> Intrinsics:
        i = self.intrinsics
        if tuple(size) == (i.width, i.height):
            return i
        return i.scaled(int(size[0]), int(size[1]))

    def elevation_of(self, ring_elevation: float | None) -> float:
        """The elevation a ring is taken at (None: the rig's own, as measured/assumed)."""
        return self.geometry.elevation_deg if ring_elevation is None else float(ring_elevation)

    def pose(self, elevation_deg: float | None, angle_deg: float) -> Pose:
        return camera_pose(self.geometry, elevation_deg, angle_deg)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "nominal": self.nominal,
                "calibration_id": self.calibration_id, "rms_px": self.rms_px,
                "note": self.note, "intrinsics": self.intrinsics.to_dict(),
                "geometry": self.geometry.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraModel:
        return cls(source=d["source"], intrinsics=Intrinsics.from_dict(d["intrinsics"]),
                   geometry=RigGeometry.from_dict(d["geometry"]),
                   calibration_id=d.get("calibration_id"), rms_px=d.get("rms_px"),
                   note=d.get("note"))


def nominal_intrinsics(size: tuple[int, int]) -> Intrinsics:
    w, h = int(size[0]), int(size[1])
    f = (w / 2) / math.tan(math.radians(NOMINAL_HFOV_DEG / 2))
    return Intrinsics(fx=f, fy=f, cx=(w - 1) / 2, cy=(h - 1) / 2, width=w, height=h)


def nominal_model(camera: dict[str, Any], size: tuple[int, int], note: str) -> CameraModel:
    """From what the camera reports of itself (the mock: its true scene), else defaults."""
    if isinstance(camera.get("intrinsics"), dict) and isinstance(camera.get("geometry"), dict):
        return CameraModel("nominal", Intrinsics.from_dict(camera["intrinsics"]),
                           RigGeometry.from_dict(camera["geometry"]), note=note)
    return CameraModel("nominal", nominal_intrinsics(size), RigGeometry(), note=note)


def camera_model(data_dir: Path, camera: dict[str, Any], size: tuple[int, int],
                 calibration_id: str | None = None) -> CameraModel:
    """The model for a scan: its own calibration (on resume, by id), else the current one,
    else nominal. `camera` is rig.describe()["camera"]."""
    cal, note = None, None
    if calibration_id:
        try:
            cal = load_calibration(calibration_dir(data_dir) / f"{calibration_id}.json")
        except CalibrationError as exc:
            note = f"{exc} Until then poses are nominal."
    else:
        cal, note = current_calibration(data_dir)
    if cal is None:
        return nominal_model(camera, size, note or "Poses are nominal.")
    return CameraModel("calibration", cal.intrinsics, cal.geometry, calibration_id=cal.id,
                       rms_px=cal.rms_px)


def pose_entry(pose: Pose) -> dict[str, Any]:
    """A frame's pose as the metadata stores it: COLMAP's world-to-camera quaternion and
    translation, and the camera centre in the object frame."""
    q, t = colmap_image_pose(pose)
    return {"qvec": [float(x) for x in q], "tvec": [float(x) for x in t],
            "centre": [float(x) for x in pose.centre]}
