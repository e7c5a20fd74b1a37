"""What the station knows about Raspberry Pi camera sensors: photo sizes that fit them,
the sensor mode to use, and the focal length (and its 35 mm equivalent) for EXIF.

Profile sizes such as 1280×960 / 2028×1520 / 4056×3040 are HQ-camera (imx477, 4:3) modes;
on a Camera Module 3 (imx708, 16:9) they are cropped, on a Module 2 upscaled or cropped.
`fit_size` turns a requested size into one the sensor delivers whole, with a sentence
saying what changed; `choose_mode` picks the sensor mode that covers the full field of view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm: what "35 mm equivalent" means


@dataclass(frozen=True)
class SensorInfo:
    name: str
    pixel_um: float  # pixel pitch
    resolution: tuple[int, int]
    focal_length_mm: float | None  # the module's fixed lens; None: interchangeable lens


# picamera2's camera_properties["Model"]; NoIR variants report e.g. "imx708_noir".
SENSORS = {
    "imx708": SensorInfo("Camera Module 3", 1.4, (4608, 2592), 4.74),
    "imx708_wide": SensorInfo("Camera Module 3 Wide", 1.4, (4608, 2592), 2.75),
    "imx219": SensorInfo("Camera Module 2", 1.12, (3280, 2464), 3.04),
    "ov5647": SensorInfo("Camera Module 1", 1.4, (2592, 1944), 3.6),
    "imx477": SensorInfo("HQ Camera", 1.55, (4056, 3040), None),
    "imx296": SensorInfo("Global Shutter Camera", 3.45, (1456, 1088), None),
}
_RATIOS = {4 / 3: "4:3", 16 / 9: "16:9", 3 / 2: "3:2", 1.0: "1:1"}


def sensor_info(model: str | None) -> SensorInfo | None:
    key = (model or "").lower().replace("_noir", "")
    return SENSORS.get(key)


def _ratio(w: int, h: int) -> str:
    r = w / h
    for value, name in _RATIOS.items():
        if abs(r - value) / value < 0.01:
            return name
    return f"{r:.2f}:1"


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


def fit_size(requested: tuple[int, int], sensor_resolution: tuple[int, int],
             model: str = "camera") -> tuple[tuple[int, int], str | None]:
    """The nearest size this sensor delivers without cropping or upscaling, and a sentence
    when it differs from `requested` (None when it fits). (0, 0) means the full sensor."""
    fw, fh = int(sensor_resolution[0]), int(sensor_resolution[1])
    w, h = int(requested[0]), int(requested[1])
    if w <= 0 or h <= 0:
        return (fw, fh), None
    notes = []
    if abs((w / h) / (fw / fh) - 1) > 0.01:
        notes.append(f"{w}×{h} photos are {_ratio(w, h)} but the {model} sensor is "
                     f"{_ratio(fw, fh)}, so they would be cropped")
        h = _even(w * fh / fw)
    if w > fw or h > fh:
        notes.append(f"{w}×{h} is larger than the {model} sensor's {fw}×{fh}, so the photos "
                     "would be upscaled")
        w, h = fw, fh
    if not notes:
        return (w, h), None
    return (w, h), f"{'; '.join(notes)}: using {w}×{h} instead."


def _covers(mode: dict[str, Any], full: tuple[int, int]) -> bool:
    crop = mode.get("crop_limits")
    if not crop:
        return True  # no crop information: assume the whole sensor
    return int(crop[2]) >= full[0] * 0.99 and int(crop[3]) >= full[1] * 0.99


def choose_mode(size: tuple[int, int], modes: list[dict[str, Any]],
                sensor_resolution: tuple[int, int]) -> dict[str, Any] | None:
    """The smallest full-field-of-view sensor mode at least `size` big (else the biggest);
    None when the camera lists no raw modes."""
    full = [m for m in modes if "size" in m and _covers(m, sensor_resolution)]
    if not full:
        full = [m for m in modes if "size" in m]
    if not full:
        return None
    big_enough = [m for m in full if m["size"][0] >= size[0] and m["size"][1] >= size[1]]
    pool = big_enough or full
    pick = min if big_enough else max
    return pick(pool, key=lambda m: m["size"][0] * m["size"][1])


def focal_lengths(model: str | None, configured_mm: float, crop_limits: Any = None
                  ) -> tuple[float | None, int | None]:
    """(focal length in mm, 35 mm equivalent) for EXIF. The equivalent uses the sensor area
    the mode actually reads (`crop_limits` in sensor pixels), since a cropped mode narrows
    the view like a longer lens."""
    info = sensor_info(model)
    focal = configured_mm or (info.focal_length_mm if info else None)
    if not focal or info is None:
        return (focal or None), None
    w, h = info.resolution
    if crop_limits:
        w, h = int(crop_limits[2]), int(crop_limits[3])
    diagonal_mm = math.hypot(w, h) * info.pixel_um / 1000.0
    return float(focal), int(round(focal * FULL_FRAME_DIAGONAL_MM / diagonal_mm))
