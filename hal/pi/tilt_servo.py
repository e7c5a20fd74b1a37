"""Camera tilt on a hobby servo (gpiozero AngularServo): the pulse width sets the angle.

A servo is absolute: it goes where it is told, so its elevation is known without homing,
but it says nothing back, so each move waits `settle_seconds` for the arm to get there.
Use a hardware PWM pin (GPIO 12/13/18/19): software PWM jitters and the arm shakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpiozero import AngularServo
from gpiozero.pins import Factory

from hal.pi.gpio import close_all, gpio_errors
from hal.tilt import TiltAxis, TiltError, TiltPositionStore
from hal.tilt_settings import TiltSettings


class ServoTilt(TiltAxis):
    def __init__(self, settings: TiltSettings, pin_factory: Factory | None = None,
                 store: TiltPositionStore | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings)
        if settings.pins.servo is None:
            raise TiltError("The tilt servo has no pin: set hal.tilt.pins.servo in "
                            "config/hal.toml (a hardware PWM pin such as 18).")
        for elevation in (settings.min_elevation_deg, settings.max_elevation_deg):
            angle = self.servo_angle(elevation)
            if not settings.servo_min_angle <= angle <= settings.servo_max_angle:
                raise TiltError(
                    f"The tilt limits need the servo at {angle:g}°, outside its "
                    f"{settings.servo_min_angle:g}° to {settings.servo_max_angle:g}°: change "
                    "hal.tilt.servo_offset_deg or the elevation limits in config/hal.toml.")
        with gpio_errors("the tilt servo", TiltError):
            # initial_angle=None: no pulses until the first move, so building the rig never
            # swings the arm.
            self._servo = AngularServo(
                settings.pins.servo, initial_angle=None,
                min_angle=settings.servo_min_angle, max_angle=settings.servo_max_angle,
                min_pulse_width=settings.servo_min_pulse_s,
                max_pulse_width=settings.servo_max_pulse_s, pin_factory=pin_factory)
        self._store = store or TiltPositionStore(None)
        self._sleep = sleep
        saved = self._store.load()
        self._elevation = settings.rest_elevation_deg if saved is None else saved
        self._driven = False

    def servo_angle(self, elevation_deg: float) -> float:
        s = self.settings
        return s.servo_offset_deg + s.servo_direction * elevation_deg

    @property
    def elevation_deg(self) -> float:
        return self._elevation

    @property
    def position_known(self) -> bool:
        return self._driven  # once told where to go, a servo is there

    @property
    def is_enabled(self) -> bool:
        return self._servo.angle is not None

    def _move(self, elevation_deg: float) -> None:
        self.raise_if_stopped()
        self._servo.angle = self.servo_angle(elevation_deg)
        self._elevation = elevation_deg
        self._driven = True
        self._store.save(elevation_deg)
        self._sleep(self.settings.settle_seconds)

    def home(self) -> None:
        """Drive to the elevation it believes it is at, so the arm is held from now on."""
        self._move(self._elevation)

    def disable(self) -> None:
        self._servo.detach()  # no pulses: the servo goes limp

    def close(self) -> None:
        close_all(self._servo)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "servo_angle": self.servo_angle(self._elevation)}
