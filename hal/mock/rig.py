"""Builds the simulated rig: the camera sees whatever angle the turntable is at."""

from __future__ import annotations

from hal.interfaces import Rig
from hal.mock.button import MockButton
from hal.mock.camera import MockCamera
from hal.mock.light import MockLight
from hal.mock.turntable import MockTurntable
from hal.settings import HalSettings


def build_rig(settings: HalSettings) -> Rig:
    turntable = MockTurntable(
        seconds_per_rev=settings.mock.seconds_per_rev,
        home_direction=settings.turntable.home_direction,
        hold=settings.turntable.hold_torque,
    )
    camera = MockCamera(
        resolution=settings.mock.resolution,
        capture_seconds=settings.mock.capture_seconds,
        angle_source=lambda: turntable.angle_deg,
        fault_file=settings.mock.fault_file or None,
        jpeg_quality=settings.camera.jpeg_quality,
    )
    return Rig("mock", camera=camera, turntable=turntable, light=MockLight())


def build_button(settings: HalSettings) -> MockButton:
    return MockButton()
