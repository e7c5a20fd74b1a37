"""Builds the simulated rig: the camera sees the platter's TRUE angle, which the
turntable only believes it knows (positions are kept in the data dir like on a Pi)."""

from __future__ import annotations

from hal.interfaces import Rig
from hal.mock.button import MockButton
from hal.mock.light import MockLight
from hal.mock.platter import MockPlatter
from hal.mock.turntable import MockTurntable
from hal.position import PositionStore
from hal.settings import HalSettings
from hal.tilt_mock import MockArm, MockTilt


def build_platter(settings: HalSettings) -> MockPlatter:
    """The simulated platter of this data dir (tests use it to read or turn the truth)."""
    return MockPlatter(settings.platter_file, detent_deg=settings.mock.detent_deg)


def build_arm(settings: HalSettings) -> MockArm:
    """The simulated camera arm of this data dir (tests set it by hand for guided rings)."""
    return MockArm(settings.arm_file, settings.tilt.rest_elevation_deg)


def build_rig(settings: HalSettings) -> Rig:
    platter = build_platter(settings)
    arm = build_arm(settings)
    turntable = MockTurntable(
        seconds_per_rev=settings.mock.seconds_per_rev,
        home_direction=settings.turntable.home_direction,
        hold=settings.turntable.hold_torque,
        steps_per_rev=settings.mock.steps_per_rev,
        platter=platter,
        store=PositionStore(settings.position_file),
        endstop=settings.turntable.pins.endstop is not None,
    )
    # The simulated camera renders with numpy and OpenCV: loaded by whoever builds a rig, not
    # by the button daemon, which only needs the button below.
    from hal.mock.camera import MockCamera

    camera = MockCamera(
        resolution=settings.mock.resolution,
        capture_seconds=settings.mock.capture_seconds,
        angle_source=platter.true_angle,
        fault_file=settings.mock.fault_file or None,
        jpeg_quality=settings.camera.jpeg_quality,
        control_delay_frames=settings.mock.control_delay_frames,
        elevation_source=arm.true_elevation,
    )
    tilt = None
    if settings.tilt.is_motorised:
        # The simulated arm tilts as fast as the simulated platter turns.
        tilt = MockTilt(settings.tilt, arm, seconds_per_deg=settings.mock.seconds_per_rev / 360,
                        on_moved=camera.prepare_elevation)
    return Rig("mock", camera=camera, turntable=turntable, light=MockLight(), tilt=tilt)


def build_button(settings: HalSettings) -> MockButton:
    return MockButton()
