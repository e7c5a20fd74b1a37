"""Position keeping, speed ramps and homing shared by the stepper-motor turntables.

Subclasses only say how to make one step and how to switch the coils on and off; the
position is counted in whole driver steps from home, so it never drifts however many
small moves a scan makes.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice

from hal.angles import normalize, shortest_delta
from hal.errors import TurntableError
from hal.interfaces import Turntable
from hal.pi.ramp import step_delays
from hal.settings import TurntableSettings

ENABLE_SETTLE_S = 0.002  # drivers need a moment after ENABLE before the first step
BACK_OFF_MAX_DEG = 30.0  # how far homing may back off a switch that is already pressed


class SteppedTurntable(Turntable):
    def __init__(
        self,
        settings: TurntableSettings,
        endstop: DigitalInputDevice | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.hold = settings.hold_torque
        self._endstop = endstop
        self._sleep = sleep
        self._spr = settings.steps_per_platter_rev
        per_deg = self._spr / 360.0
        self._max_speed = settings.max_speed_deg_s * per_deg  # steps/s
        self._accel = settings.accel_deg_s2 * per_deg  # steps/s^2
        self._home_speed = settings.home_speed_deg_s * per_deg
        self._steps = 0  # signed driver steps from home
        self._target_deg = 0.0  # commanded angle, unbounded; rounding never accumulates
        self._enabled = False
        self._homed = False
        self._closed = False

    # -- hardware hooks ------------------------------------------------------------------
    @abstractmethod
    def _step(self, forward: bool) -> None:
        """Advance the motor by one driver step."""

    @abstractmethod
    def _set_direction(self, forward: bool) -> None: ...

    @abstractmethod
    def _energise(self) -> None: ...

    @abstractmethod
    def _deenergise(self) -> None: ...

    @abstractmethod
    def _close_pins(self) -> None: ...

    # -- state -----------------------------------------------------------------------------
    @property
    def angle_deg(self) -> float:
        return normalize(self._steps / self._spr * 360.0)

    @property
    def position_steps(self) -> int:
        """Driver steps from home (signed, not wrapped)."""
        return self._steps

    @property
    def is_homed(self) -> bool:
        return self._homed

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        self._check_open()
        if not self._enabled:
            self._energise()
            self._enabled = True
            self._sleep(ENABLE_SETTLE_S)

    def disable(self) -> None:
        if self._enabled and not self._closed:
            self._deenergise()
        self._enabled = False

    # -- moves -----------------------------------------------------------------------------
    def rotate_by(self, delta_deg: float) -> None:
        target = self._target_deg + float(delta_deg)
        self._run(round(target / 360.0 * self._spr) - self._steps)
        self._target_deg = target

    def move_to(self, angle_deg: float) -> None:
        """Shortest way round (ties go forward), measured from the commanded angle."""
        self.rotate_by(shortest_delta(normalize(self._target_deg), angle_deg))

    def _run(self, n: int) -> None:
        if n == 0:
            return
        forward = n > 0
        self.enable()
        try:
            self._set_direction(forward)
            for delay in step_delays(abs(n), self._max_speed, self._accel):
                self._step(forward)
                self._steps += 1 if forward else -1
                self._sleep(delay)
        finally:
            self._idle()

    def home(self) -> None:
        """Find 0 degrees: with an endstop, turn until it triggers; without, go back to 0.

        Without a switch the turntable cannot know where it is after a power cut, so home
        is wherever the platter was when the scanner started.
        """
        self._homed = False
        if self._endstop is None:
            self.move_to(0.0)
        else:
            self._seek_endstop()
        self._steps = 0
        self._target_deg = 0.0
        self._homed = True

    def _seek_endstop(self) -> None:
        assert self._endstop is not None
        forward = self.settings.home_direction == "forward"
        delay = 1.0 / self._home_speed
        self.enable()
        try:
            if self._endstop.is_active:
                # Already on the switch: back off first so we home on the same switch edge.
                self._set_direction(not forward)
                limit = math.ceil(BACK_OFF_MAX_DEG / 360.0 * self._spr)
                for _ in range(limit):
                    if not self._endstop.is_active:
                        break
                    self._step(not forward)
                    self._sleep(delay)
                else:
                    raise TurntableError(
                        "The home switch stays pressed even after turning away from it: "
                        "check that it is not stuck and that `endstop_active_low` in "
                        "config/hal.toml matches its wiring."
                    )
            self._set_direction(forward)
            limit = math.ceil(self.settings.home_max_deg / 360.0 * self._spr)
            for _ in range(limit):
                if self._endstop.is_active:
                    return
                self._step(forward)
                self._sleep(delay)
            if self._endstop.is_active:
                return
            raise TurntableError(
                f"The turntable turned {self.settings.home_max_deg:g} degrees without reaching "
                "its home switch: check the switch wiring and that the motor really turns "
                "(motor cable, driver power supply)."
            )
        finally:
            self._idle()

    def _idle(self) -> None:
        if not self.hold:
            self.disable()

    def _check_open(self) -> None:
        if self._closed:
            raise TurntableError("The turntable was already closed; load the rig again.")

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.disable()
        finally:
            self._closed = True
            self._close_pins()

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "type": s.driver,
            "steps_per_rev": s.steps_per_rev,
            "microsteps": s.microsteps,
            "gear_ratio": s.gear_ratio,
            "steps_per_platter_rev": self._spr,
            "max_speed_deg_s": s.max_speed_deg_s,
            "accel_deg_s2": s.accel_deg_s2,
            "endstop": self._endstop is not None,
        }
