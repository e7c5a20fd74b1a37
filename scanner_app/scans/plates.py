"""Background plates and frame masks.

A plate is a photo of the empty platter at one ring elevation, taken once per set-up (camera
model and photo size) and reused by every later scan: <data dir>/plates/<set-up>/<elevation>.jpg
with a .json beside it saying the platter angle it was taken at. On the mock rig the camera is
shown the empty platter (`scene_content(camera, "empty")`); a real rig needs the object off
the platter, which the scan asks for in a guided step.

Each frame's mask (255 = object) is written beside the frames, images/scans/<id>/masks/
frame_NNNN.png, from the ring's plate (its platter top re-projected to the frame's angle with
the camera model) or, with no plate, the uniform-backdrop fallback.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hal.atomic import atomic_write_bytes
from hal.masks import PlateMasker, object_mask, write_mask
from hal.mock.scene import PLATTER_RADIUS_M, scene_content
from scanner_app.scans.poses import CameraModel

log = logging.getLogger("scanner.scans")

MASKS_DIR = "masks"
# Masks are computed at most this wide and scaled up: at 12 MP a full-size mask takes many
# seconds a frame on a Pi, and the object's outline gains little from it.
MASK_MAX_WIDTH = 1280


def setup_key(model: CameraModel, size: tuple[int, int]) -> str:
    """Plates are reused while the camera stands where it stood: same calibration (or the
    nominal model) and the same photo size."""
    who = model.calibration_id or "nominal"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{who}-{int(size[0])}x{int(size[1])}")


class Plates:
    def __init__(self, data_dir: Path, model: CameraModel, size: tuple[int, int]) -> None:
        self.folder = Path(data_dir) / "plates" / setup_key(model, size)
        self.model = model
        self.size = (int(size[0]), int(size[1]))

    def path_for(self, elevation_deg: float) -> Path:
        return self.folder / f"elev_{elevation_deg:+08.3f}.jpg"

    def plate(self, elevation_deg: float) -> tuple[Path, float] | None:
        """(photo, platter angle it was taken at) for this elevation, if one was taken."""
        path = self.path_for(elevation_deg)
        try:
            info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return (path, float(info["angle_deg"])) if path.is_file() else None

    def take(self, rig: Any, elevation_deg: float) -> tuple[Path, float]:
        """Photograph the empty platter now (the mock camera is shown it; on a real rig the
        object must be off the platter already)."""
        path = self.path_for(elevation_deg)
        self.folder.mkdir(parents=True, exist_ok=True)
        angle = float(rig.turntable.angle_deg)
        with scene_content(rig.camera, "empty"):
            rig.camera.capture(path, exif={"angle_deg": angle})
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(
            {"elevation_deg": elevation_deg, "angle_deg": angle,
             "size": list(self.size)}).encode())
        log.info("Background plate taken at %s° elevation: %s", elevation_deg, path)
        return path, angle

    def describe(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "setup": self.folder.name}


# libjpeg scales while it decodes: a 12 MP frame read at 1/2 size decodes several times
# faster on a Pi than read whole and shrunk.
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


def _upright_jpeg_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG that OpenCV shows as stored (no EXIF turn);
    None for anything else."""
    from PIL import Image  # the header only; Pillow is loaded where masks are made

    try:
        with Image.open(path) as img:
            if img.format in ("JPEG", "MPO") and img.getexif().get(0x0112, 1) == 1:
                return img.size
    except (OSError, ValueError):
        pass
    return None


def read_for_mask(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """A photo (BGR) at the size masks are computed at, at most MASK_MAX_WIDTH wide, and
    its own (width, height) as OpenCV reads it whole. Raises ValueError when unreadable."""
    size = _upright_jpeg_size(path)
    factor, flags = 1, cv2.IMREAD_COLOR
    if size is not None:
        factor, flags = next(((f, reduced) for f, reduced in _REDUCED
                              if size[0] / f >= MASK_MAX_WIDTH), (1, flags))
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ValueError(f"The photo {path} could not be read.")
    full = size if factor > 1 else (img.shape[1], img.shape[0])
    if full[0] > MASK_MAX_WIDTH:
        small = (MASK_MAX_WIDTH, round(full[1] * MASK_MAX_WIDTH / full[0]))
        if (img.shape[1], img.shape[0]) != small:
            img = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
    return img, full


def mask_path(images_dir: Path, frame_file: Path) -> Path:
    return images_dir / MASKS_DIR / f"{frame_file.stem}.png"


class FrameMasks:
    """Writes one scan's frame masks. The last ring's plate is kept prepared (read, blurred,
    its platter top's geometry worked out: hal.masks.PlateMasker), since that costs more than
    masking a frame and the frames come ring by ring. One per scan run, used by one thread."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._masker: PlateMasker | None = None

    def write(self, frame_file: Path, images_dir: Path, model: CameraModel,
              elevation_deg: float, angle_deg: float,
              plate: tuple[Path, float] | None) -> Path:
        """Compute and write one frame's mask; returns its path."""
        frame, full = read_for_mask(frame_file)
        h, w = frame.shape[:2]
        masker = None if plate is None else self._masker_for(plate, frame.shape, full, model,
                                                             elevation_deg)
        mask = object_mask(frame) if masker is None else masker.mask(frame, angle_deg)
        if (w, h) != full:
            mask = cv2.resize(mask.astype(np.uint8) * 255, full,
                              interpolation=cv2.INTER_LINEAR) > 127
        out = mask_path(images_dir, frame_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_mask(out, mask)

    def _masker_for(self, plate: tuple[Path, float], shape: tuple[int, ...],
                    full: tuple[int, int], model: CameraModel,
                    elevation_deg: float) -> PlateMasker | None:
        """The plate prepared for frames of `shape` (None: unreadable, or taken at another
        size, so not this set-up's), kept while the plate file and camera model stay."""
        path, plate_angle = plate
        try:
            stat = path.stat()
        except OSError:
            return None
        size = (shape[1], shape[0])
        intrinsics, pose0 = model.intrinsics_for(size), model.pose(elevation_deg, 0.0)
        key = (str(path), stat.st_mtime_ns, stat.st_size, plate_angle, shape, full,
               intrinsics, pose0.R.tobytes(), pose0.t.tobytes())
        if key != self._key:
            self._key, self._masker = key, None  # the old one's memory goes first
            try:
                img, plate_full = read_for_mask(path)  # read as the frames are
            except ValueError:
                return None
            if plate_full == full:
                self._masker = PlateMasker(img, intrinsics, pose0, plate_angle,
                                           PLATTER_RADIUS_M)
        return self._masker


def write_frame_mask(frame_file: Path, images_dir: Path, model: CameraModel,
                     elevation_deg: float, angle_deg: float,
                     plate: tuple[Path, float] | None) -> Path:
    """Compute and write one frame's mask; returns its path (FrameMasks for many frames)."""
    return FrameMasks().write(frame_file, images_dir, model, elevation_deg, angle_deg, plate)
