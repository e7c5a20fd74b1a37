"""Frames of the mock rig's true scene for the pipeline: rendered photos, the renderer's exact
masks and the true poses (hal.mock.scene.MockScene), at a small size."""

from __future__ import annotations

import math

import cv2
import numpy as np

from hal.geometry import Pose
from hal.mock.scene import MockScene
from scanner_app.reconstruction.frames import FrameInput

SIZE = (320, 240)
RINGS = (10.0, 35.0)


def mock_frames(size: tuple[int, int] = SIZE, rings: tuple[float, ...] = RINGS,
                per_ring: int = 12) -> list[FrameInput]:
    scene = MockScene()
    intrinsics = scene.intrinsics_for(size)
    frames = []
    for ring, elevation in enumerate(rings):
        for k in range(per_ring):
            angle = 360.0 * k / per_ring
            view = scene.render(elevation, angle, size)
            frames.append(FrameInput(f"r{ring}_{k:03d}.jpg", intrinsics,
                                     scene.pose(elevation, angle), ring=ring, angle_deg=angle,
                                     rgb_array=view.rgb, mask_array=view.mask))
    return frames


def perturbed(pose: Pose, rng: np.random.Generator, degrees: float = 2.0,
              metres: float = 0.005) -> Pose:
    """The pose turned by exactly `degrees` about a random axis through its camera centre and
    moved by exactly `metres` in a random direction."""
    axis = rng.normal(size=3)
    turn, _ = cv2.Rodrigues(axis / np.linalg.norm(axis) * math.radians(degrees))
    step = rng.normal(size=3)
    centre = pose.centre + step / np.linalg.norm(step) * metres
    rotation = turn @ pose.R
    return Pose(rotation, -rotation @ centre)
