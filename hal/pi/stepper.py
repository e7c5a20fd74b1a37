"""Turntable on a STEP/DIR/ENABLE stepper driver board (A4988, DRV8825, TMC2208...)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpiozero.pins import Factory

from hal.errors import TurntableError
from hal.pi.gpio import close_all, gpio_errors, open_endstop, quiet_output
from hal.pi.stepped_turntable import SteppedTurntable
from hal.position import PositionStore
from hal.settings import TurntableSettings


class StepDirTurntable(SteppedTurntable):
    """One STEP pulse per (micro)step, DIR high = forward (flip with `reverse`).

    ENABLE is active low on all the common boards; it is claimed first and at its inactive
    level, so building the turntable never switches the driver on, not even for a moment.
    The motor is only powered while moving (or held for a scan, or with `hold_torque`).
    Microstepping is chosen by the board's MS pins or jumpers; `microsteps` must match them.
    """

    def __init__(
        self,
        settings: TurntableSettings,
        pin_factory: Factory | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        store: PositionStore | None = None,
    ) -> None:
        pins = settings.pins
        made: list = []
        try:
            with gpio_errors("the stepper driver (STEP/DIR/ENABLE)", TurntableError):
                self._enable_out = None
                if pins.enable is not None:  # first: the driver stays off from here on
                    self._enable_out = quiet_output(
                        pins.enable, active_high=not pins.enable_active_low,
                        pin_factory=pin_factory)
                    made.append(self._enable_out)
                self._step_out = quiet_output(pins.step, pin_factory=pin_factory)
                made.append(self._step_out)
                self._dir_out = quiet_output(pins.dir, pin_factory=pin_factory)
                made.append(self._dir_out)
            endstop = open_endstop(pins.endstop, pins.endstop_active_low, pin_factory)
            made.append(endstop)
        except Exception:
            close_all(*made)
            raise
        super().__init__(settings, endstop=endstop, sleep=sleep, clock=clock, store=store)

    def _step(self, forward: bool) -> None:
        self._step_out.on()
        self._step_out.off()  # two GPIO writes from Python are microseconds apart: enough

    def _set_direction(self, forward: bool) -> None:
        self._dir_out.value = forward != self.settings.reverse

    def _energise(self) -> None:
        if self._enable_out is not None:
            self._enable_out.on()

    def _deenergise(self) -> None:
        if self._enable_out is not None:
            self._enable_out.off()

    def _close_pins(self) -> None:
        close_all(self._step_out, self._dir_out, self._enable_out, self._endstop)
