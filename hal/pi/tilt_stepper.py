"""Camera tilt on a second STEP/DIR stepper driver: the arm turns by whole driver steps.

The elevation is counted in steps and kept in a small file (TiltPositionStore), so a new
job knows where the arm stands; with a switch at the lowest elevation `home()` measures it.
The coils stay energised from the first move until the rig closes: a camera arm is a load
on the motor, and a released rotor would let it sag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpiozero.pins import Factory

from hal.pi.gpio import close_all, gpio_errors, open_endstop, quiet_output
from hal.pi.tilt_common import HOME_OVERRUN_DEG
from hal.tilt import TiltAxis, TiltError, TiltPositionStore
from hal.tilt_settings import TiltSettings

ENABLE_SETTLE_S = 0.002


class StepDirTilt(TiltAxis):
    def __init__(self, settings: TiltSettings, pin_factory: Factory | None = None,
                 store: TiltPositionStore | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings)
        pins = settings.pins
        made: list = []
        try:
            with gpio_errors("the tilt stepper driver (STEP/DIR/ENABLE)", TiltError):
                self._enable_out = None
                if pins.enable is not None:  # first, so the driver never blips on
                    self._enable_out = quiet_output(
                        pins.enable, active_high=not pins.enable_active_low,
                        pin_factory=pin_factory)
                    made.append(self._enable_out)
                self._step_out = quiet_output(pins.step, pin_factory=pin_factory)
                made.append(self._step_out)
                self._dir_out = quiet_output(pins.dir, pin_factory=pin_factory)
                made.append(self._dir_out)
            self._endstop = open_endstop(pins.endstop, pins.endstop_active_low, pin_factory)
        except Exception:
            close_all(*made)
            raise
        self._store = store or TiltPositionStore(None)
        self._sleep = sleep
        self._per_deg = settings.steps_per_degree
        saved = self._store.load()
        start = settings.rest_elevation_deg if saved is None else saved
        self._steps = round(start * self._per_deg)
        self._enabled = False
        self._homed = False

    @property
    def elevation_deg(self) -> float:
        return self._steps / self._per_deg

    @property
    def position_known(self) -> bool:
        return self._homed

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def _energise(self) -> None:
        if not self._enabled:
            if self._enable_out is not None:
                self._enable_out.on()
            self._enabled = True
            self._sleep(ENABLE_SETTLE_S)

    def _pulse(self, up: bool) -> None:
        self._dir_out.value = up != self.settings.reverse
        self._step_out.on()
        self._step_out.off()
        self._steps += 1 if up else -1

    def _move(self, elevation_deg: float) -> None:
        target = round(elevation_deg * self._per_deg)
        self._energise()
        delay = 1.0 / (self.settings.max_speed_deg_s * self._per_deg)
        try:
            while self._steps != target:
                self.raise_if_stopped()
                self._pulse(target > self._steps)
                self._sleep(delay)
        finally:
            self._store.save(self.elevation_deg)

    def home(self) -> None:
        """Lower the arm onto its switch, which marks min_elevation_deg. Without a switch
        the saved elevation stands (position assumed)."""
        if self._endstop is None:
            return
        self._energise()
        span = self.settings.max_elevation_deg - self.settings.min_elevation_deg
        limit = round((span + HOME_OVERRUN_DEG) * self._per_deg)
        delay = 1.0 / (self.settings.max_speed_deg_s * self._per_deg)
        for _ in range(limit):
            if self._endstop.is_active:
                self._steps = round(self.settings.min_elevation_deg * self._per_deg)
                self._homed = True
                self._store.save(self.elevation_deg)
                return
            self.raise_if_stopped()
            self._pulse(False)
            self._sleep(delay)
        raise TiltError(
            "The camera arm did not reach its home switch: check the switch and its wiring "
            "(hal.tilt.pins.endstop) and that nothing blocks the arm.")

    def disable(self) -> None:
        if self._enable_out is not None:
            self._enable_out.off()
        self._enabled = False

    def close(self) -> None:
        self.disable()
        close_all(self._step_out, self._dir_out, self._enable_out, self._endstop)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "steps_per_degree": self._per_deg}
