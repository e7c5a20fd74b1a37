"""What the pipeline reconstructs from: one `FrameInput` per frame (its photo, its mask, the
camera model and the known pose), with no database and no Flask, so the pipeline can be fed
by a scan on disk (reconstruction/inputs.py) or by the mock scene in tests and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hal.geometry import Intrinsics, Pose, distort_normalised


@dataclass
class FrameInput:
    name: str  # unique file name, e.g. frame_0001.jpg
    intrinsics: Intrinsics
    pose: Pose  # known (prior) pose: x_cam = R @ X_obj + t
    image_path: Path | None = None
    mask_path: Path | None = None
    ring: int = 0
    angle_deg: float = 0.0
    # In-memory copies (tests, the benchmark); otherwise read from the paths when asked.
    rgb_array: np.ndarray | None = field(default=None, repr=False)
    mask_array: np.ndarray | None = field(default=None, repr=False)

    def rgb(self) -> np.ndarray:
        if self.rgb_array is None:
            if self.image_path is None:
                raise FileNotFoundError(f"{self.name} has no photo")
            bgr = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(f"{self.image_path} cannot be read")
            self.rgb_array = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return self.rgb_array

    def mask(self) -> np.ndarray | None:
        """The object mask (bool, True = object), or None when the frame has none."""
        if self.mask_array is None and self.mask_path is not None and self.mask_path.is_file():
            grey = cv2.imread(str(self.mask_path), cv2.IMREAD_GRAYSCALE)
            if grey is not None:
                self.mask_array = grey > 127
        return self.mask_array

    @property
    def has_mask(self) -> bool:
        return self.mask_array is not None or (self.mask_path is not None
                                               and self.mask_path.is_file())


def project_points(intrinsics: Intrinsics, pose: Pose,
                   points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, z) of object-frame points (N, 3): pixel coordinates (OpenCV convention) with
    the lens's distortion, and the depth along the optical axis."""
    cam = points @ pose.R.T + pose.t
    z = cam[:, 2]
    safe = np.where(z > 1e-9, z, 1e-9)
    x, y = cam[:, 0] / safe, cam[:, 1] / safe
    if intrinsics.has_distortion:
        x, y = distort_normalised(x, y, intrinsics.distortion)
    return intrinsics.fx * x + intrinsics.cx, intrinsics.fy * y + intrinsics.cy, z
