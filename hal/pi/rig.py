"""Builds the Raspberry Pi rig from the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero.pins import Factory

from hal.errors import HardwareError
from hal.interfaces import Rig, StartButton, Turntable
from hal.pi.button import PiButton
from hal.pi.camera import PiCamera
from hal.pi.gpio import prepare_lgpio_workdir
from hal.pi.light import PiLight
from hal.pins import pin_clashes
from hal.position import PositionStore
from hal.settings import HalSettings, TurntableSettings
from hal.tilt import TiltAxis, TiltPositionStore


def build_turntable(settings: TurntableSettings, pin_factory: Factory | None = None,
                    store: PositionStore | None = None) -> Turntable:
    if settings.driver == "uln2003":
        from hal.pi.uln2003 import Uln2003Turntable

        return Uln2003Turntable(settings, pin_factory=pin_factory, store=store)
    from hal.pi.stepper import StepDirTurntable

    return StepDirTurntable(settings, pin_factory=pin_factory, store=store)


def build_tilt(settings: HalSettings, pin_factory: Factory | None = None) -> TiltAxis | None:
    """The camera arm's motor, or None when the operator tilts it by hand."""
    tilt = settings.tilt
    store = TiltPositionStore(settings.tilt_file)
    if tilt.driver == "servo":
        from hal.pi.tilt_servo import ServoTilt

        return ServoTilt(tilt, pin_factory=pin_factory, store=store)
    if tilt.driver == "step_dir":
        from hal.pi.tilt_stepper import StepDirTilt

        return StepDirTilt(tilt, pin_factory=pin_factory, store=store)
    return None


def _prepare(settings: HalSettings) -> None:
    clashes = pin_clashes(settings)
    if clashes:
        raise HardwareError(clashes[0])
    # Before the first pin opens: lgpio creates its notification pipes in LG_WD.
    prepare_lgpio_workdir(settings.data_path / "run")


def build_rig(
    settings: HalSettings,
    pin_factory: Factory | None = None,
    picamera2_factory: Callable[..., Any] | None = None,
) -> Rig:
    _prepare(settings)
    # The camera opens on first use, so a missing camera shows up as a camera error
    # (with its own advice), not as a failure to build the whole rig.
    camera = PiCamera(settings.camera, picamera2_factory=picamera2_factory)
    turntable = build_turntable(settings.turntable, pin_factory,
                                PositionStore(settings.position_file))
    try:
        light = PiLight(settings.light, pin_factory=pin_factory)
    except Exception:
        turntable.close()  # release its pins: nobody else holds a reference to it
        raise
    try:
        tilt = build_tilt(settings, pin_factory)
    except Exception:
        turntable.close()
        light.close()
        raise
    return Rig("pi", camera=camera, turntable=turntable, light=light, tilt=tilt)


def build_button(settings: HalSettings, pin_factory: Factory | None = None) -> StartButton:
    _prepare(settings)
    return PiButton(settings.button, pin_factory=pin_factory)
