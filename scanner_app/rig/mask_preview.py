"""The preview's mask: what a scan would cut out of the live frame as the object, computed in
the worker with hal/masks.py against the background plate of the default profile's set-up
(scans/service.py's background_plate), else the uniform-backdrop fallback. Published with the
framing overlay as outlines in fractions of the frame's width and height; static/rig.js fills
them semi-transparent. Imported only by the preview job (OpenCV stays out of the web)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hal import Rig
from hal.masks import object_mask
from hal.mock.scene import PLATTER_RADIUS_M  # as scans/plates.py: the platter's top
from scanner_app.scans import service as scans

log = logging.getLogger("scanner.preview")

EVERY_SECONDS = 0.5  # a mask costs tens of milliseconds on a Pi; the outline moves slowly
MIN_AREA = 0.0005  # of the frame: specks are not the object
MAX_POINTS = 400  # per published mask, all outlines together


class MaskPreview:
    def __init__(self, rig: Rig, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.plate_img: np.ndarray | None = None
        self.plate: scans.BackgroundPlate | None = None
        self.last: dict[str, Any] | None = None
        self.when = -1e9
        try:
            tilt = rig.tilt.elevation_deg if rig.tilt is not None else None
            plate = scans.background_plate(rig.camera.describe(), tilt)
            if plate is not None:
                self._load(plate)
        except Exception:  # noqa: BLE001 - the mask is a help, never a reason to fail
            log.exception("The preview's background plate could not be read")

    def _load(self, plate: scans.BackgroundPlate) -> None:
        img = cv2.imread(str(plate.path), cv2.IMREAD_COLOR)
        w, h = self.size
        if img is None or abs(img.shape[1] / img.shape[0] - w / h) > 0.01:
            log.info("Preview mask without a plate: %s is not of the preview's shape",
                     plate.path)
            return
        self.plate_img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self.plate = plate

    @property
    def source(self) -> str:
        return "plate" if self.plate is not None else "backdrop"

    def mask_of(self, frame_path: Path, angle_deg: float) -> dict[str, Any] | None:
        """{"source", "outlines": [[[x, y], ...], ...]} for this frame, at most every
        EVERY_SECONDS (the last one between); None when it cannot be worked out."""
        now = time.monotonic()
        if now - self.when < EVERY_SECONDS:
            return self.last
        self.when = now
        try:
            frame = cv2.imread(str(frame_path), cv2.IMREAD_COLOR)
            if frame is None:
                return self.last
            if (frame.shape[1], frame.shape[0]) != self.size:
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
            if self.plate is None or self.plate_img is None:
                mask = object_mask(frame)
            else:
                model = self.plate.model
                mask = object_mask(frame, self.plate_img,
                                   intrinsics=model.intrinsics_for(self.size),
                                   pose0=model.pose(self.plate.elevation_deg, 0.0),
                                   plate_angle_deg=self.plate.angle_deg,
                                   frame_angle_deg=angle_deg,
                                   platter_radius_m=PLATTER_RADIUS_M)
            self.last = {"source": self.source, "outlines": outlines(mask)}
        except Exception:  # noqa: BLE001
            log.exception("The preview's mask could not be worked out")
            self.last = None
        return self.last


def outlines(mask: np.ndarray) -> list[list[list[float]]]:
    """The mask's outer outlines as polygons in fractions of the frame, largest first."""
    h, w = mask.shape[:2]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    kept = sorted((c for c in contours if cv2.contourArea(c) >= MIN_AREA * w * h),
                  key=cv2.contourArea, reverse=True)
    total = sum(len(c) for c in kept) or 1
    polygons = []
    for contour in kept:
        epsilon = 1.0
        poly = cv2.approxPolyDP(contour, epsilon, True)
        budget = max(8, MAX_POINTS * len(contour) // total)
        while len(poly) > budget:
            epsilon *= 1.5
            poly = cv2.approxPolyDP(contour, epsilon, True)
        polygons.append([[round(float(x) / w, 4), round(float(y) / h, 4)]
                         for x, y in poly.reshape(-1, 2)])
    return polygons
