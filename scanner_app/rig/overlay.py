"""The preview's framing overlay: where the platter's centre and rim fall in the frame,
projected with the rig's calibration (or, without one, the nominal camera model a scan would
use: what the camera reports of itself, else a 66° lens at the configured geometry).
Computed in the worker, once per preview; static/rig.js draws it over the stream as
fractions of the frame's width and height."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from hal import Rig
from hal.geometry import Intrinsics, RigGeometry, camera_pose, project

log = logging.getLogger("scanner.preview")

NOMINAL_HFOV_DEG = 66.0  # as scans/poses.py's nominal model
RIM_RADIUS_M = 0.08  # a circle this far from the axis, on the platter's surface
RIM_POINTS = 48


def _nominal(camera: dict[str, Any], size: tuple[int, int]) -> tuple[Intrinsics, RigGeometry]:
    if isinstance(camera.get("intrinsics"), dict) and isinstance(camera.get("geometry"), dict):
        return Intrinsics.from_dict(camera["intrinsics"]), RigGeometry.from_dict(
            camera["geometry"])
    w, h = size
    f = (w / 2) / math.tan(math.radians(NOMINAL_HFOV_DEG / 2))
    return Intrinsics(fx=f, fy=f, cx=(w - 1) / 2, cy=(h - 1) / 2, width=w, height=h), \
        RigGeometry()


def framing_overlay(rig: Rig, size: tuple[int, int]) -> dict[str, Any] | None:
    """{"source", "centre": [x, y], "rim": [[x, y], ...]} in fractions of the frame, or None
    when it cannot be worked out (logged; the preview goes on without it)."""
    from scanner_app.scans.service import current_rig_calibration

    try:
        calibration, _why = current_rig_calibration()
        if calibration is not None:
            intrinsics, geometry, source = (calibration.intrinsics, calibration.geometry,
                                            "calibration")
        else:
            intrinsics, geometry = _nominal(rig.camera.describe(), size)
            source = "nominal"
        intrinsics = intrinsics.scaled(*size) if (intrinsics.width, intrinsics.height) != \
            tuple(size) else intrinsics
        elevation = rig.tilt.elevation_deg if rig.tilt is not None else None
        pose = camera_pose(geometry, elevation, 0.0)
        turns = np.linspace(0, 2 * np.pi, RIM_POINTS, endpoint=False)
        points = np.vstack([[0.0, 0.0, 0.0], np.column_stack(
            [RIM_RADIUS_M * np.cos(turns), RIM_RADIUS_M * np.sin(turns), np.zeros(RIM_POINTS)])])
        pixels = project(intrinsics, pose, points) / np.array(size, dtype=float)
    except Exception:  # noqa: BLE001 - the overlay is a help, never a reason to fail
        log.exception("The preview's framing overlay could not be worked out")
        return None
    rounded = [[round(float(x), 4), round(float(y), 4)] for x, y in pixels]
    return {"source": source, "centre": rounded[0], "rim": rounded[1:]}
