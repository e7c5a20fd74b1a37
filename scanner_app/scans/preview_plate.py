"""The background plate the rig's preview masks its frames with: the plate a scan of the
default profile would use where the camera stands now (same calibration or nominal model,
same photo size, same elevation; scans/plates.py). Re-exported by scans/service.py.

OpenCV and the calibration reader are imported only when asked (the web process loads the
service at start and must stay small)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner_app.config import Settings, current_settings
from scanner_app.scans.profiles import profile_for

if TYPE_CHECKING:
    from scanner_app.scans.poses import CameraModel


@dataclass(frozen=True)
class BackgroundPlate:
    path: Path  # the photo of the empty platter (at `size`)
    angle_deg: float  # the platter angle it was taken at
    elevation_deg: float
    size: tuple[int, int]
    model: CameraModel  # the camera model its set-up is keyed by


def camera_elevation(model: CameraModel, tilt_elevation_deg: float | None) -> float:
    """Where the camera stands: the tilt's elevation, else the model's own (as a scan's ring
    without an elevation of its own)."""
    return model.elevation_of(tilt_elevation_deg)


def background_plate(camera: dict[str, Any], tilt_elevation_deg: float | None = None,
                     settings: Settings | None = None) -> BackgroundPlate | None:
    """The plate of the default profile's set-up at this elevation, or None when no scan has
    taken one yet (or the settings have no usable default profile). `camera` is
    rig.camera.describe(). Needs an app context (the profiles live in the database)."""
    from scanner_app.platform.errors import BadRequest
    from scanner_app.scans.plates import Plates
    from scanner_app.scans.poses import camera_model

    settings = settings or current_settings()
    try:
        size = tuple(int(v) for v in profile_for(None, settings).resolution)
    except BadRequest:
        return None
    model = camera_model(settings.data_dir, camera, size)
    elevation = camera_elevation(model, tilt_elevation_deg)
    found = Plates(settings.data_dir, model, size).plate(elevation)
    if found is None:
        return None
    return BackgroundPlate(found[0], found[1], elevation, (size[0], size[1]), model)
