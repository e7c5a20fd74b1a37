"""Position keeping, speed ramps and homing shared by the stepper-motor turntables.

Subclasses only say how to make one step and how to switch the coils on and off; the
position is counted in whole driver steps from home, so it never drifts however many
small moves a scan makes. With a PositionStore the count is saved before and after every
move and restored when the turntable is built again (next job, restart, power cut).

Steps are timed against an absolute clock: each step has a deadline on the ramp's
schedule, so time lost to Python (a GC pause, a slow GPIO write) is caught up on the next
steps instead of stretching every later interval. A lag longer than MAX_CATCH_UP_S is not
caught up (a burst of steps would stall the motor): the schedule restarts from now.
"""

from __future__ import annotations

import logging
import math
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice

from hal.angles import normalize, shortest_delta
from hal.errors import HardwareStopped, TurntableError
from hal.interfaces import Turntable
from hal.pi.ramp import step_delays
from hal.position import PositionStore, RigPosition, position_note
from hal.settings import TurntableSettings

log = logging.getLogger(__name__)

ENABLE_SETTLE_S = 0.002  # drivers need a moment after ENABLE before the first step
BACK_OFF_MAX_DEG = 30.0  # how far homing may back off a switch that is already pressed
MAX_CATCH_UP_S = 0.005  # later than this, restart the step schedule instead of bursting


class SteppedTurntable(Turntable):
    def __init__(
        self,
        settings: TurntableSettings,
        endstop: DigitalInputDevice | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        store: PositionStore | None = None,
    ) -> None:
        self.settings = settings
        self.hold = settings.hold_torque
        self.stop_check = None
        self._endstop = endstop
        self._sleep = sleep
        self._clock = clock
        self._store = store
        self._spr = settings.steps_per_platter_rev
        per_deg = self._spr / 360.0
        self._max_speed = settings.max_speed_deg_s * per_deg  # steps/s
        self._accel = settings.accel_deg_s2 * per_deg  # steps/s^2
        self._home_speed = settings.home_speed_deg_s * per_deg
        self._samples = settings.pins.endstop_samples
        self._steps = 0  # signed driver steps from home
        self._target_deg = 0.0  # commanded angle, unbounded; rounding never accumulates
        self._zero = "assumed"
        self._interrupted = False  # the saved record said a move was cut short
        self._enabled = False
        self._homed = False
        self._closed = False
        self._restore()

    def _restore(self) -> None:
        saved = self._store.load() if self._store is not None else None
        if saved is None:
            return
        steps = saved.steps
        if saved.steps_per_rev and abs(saved.steps_per_rev - self._spr) > 1e-9:
            # The motor settings changed: keep the same angle in the new step size.
            steps = round(saved.steps * self._spr / saved.steps_per_rev)
        self._steps = int(steps)
        self._target_deg = self._steps / self._spr * 360.0
        self._zero = saved.zero
        self._interrupted = saved.moving_to is not None

    def _save(self, moving_to: int | None = None) -> None:
        if self._store is None:
            return
        self._store.save(RigPosition(steps=self._steps, steps_per_rev=self._spr,
                                     moving_to=moving_to, zero=self._zero))

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
    def position_known(self) -> bool:
        return self._endstop is not None and self._homed and not self._interrupted

    @property
    def position_note(self) -> str:
        saved = RigPosition(steps=self._steps, zero=self._zero)
        return position_note(saved, self._endstop is not None, self._homed,
                             self._interrupted)[1]

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
        try:
            self._run(round(target / 360.0 * self._spr) - self._steps)
        except BaseException:
            # Stopped half way: the commanded angle is where the platter really is now.
            self._target_deg = self._steps / self._spr * 360.0
            raise
        self._target_deg = target

    def move_to(self, angle_deg: float) -> None:
        """Shortest way round (ties go forward), measured from the commanded angle."""
        self.rotate_by(shortest_delta(normalize(self._target_deg), angle_deg))

    def set_zero_here(self) -> None:
        self._check_open()
        self._steps = 0
        self._target_deg = 0.0
        self._zero = "hand"
        self._interrupted = False
        self._save()

    def _run(self, n: int) -> None:
        if n == 0:
            return
        self._check_open()
        forward = n > 0
        self._save(moving_to=self._steps + n)  # a crash from here on leaves "moving"
        try:
            self.enable()
            self._set_direction(forward)
            deadline = self._clock()
            for delay in step_delays(abs(n), self._max_speed, self._accel):
                self._check_stop()
                self._step(forward)
                self._steps += 1 if forward else -1
                deadline = self._wait_until(deadline + delay)
        finally:
            self._save()
            self._idle()

    def _wait_until(self, deadline: float) -> float:
        """Sleep until `deadline` on the clock; return the deadline the next step builds on."""
        remaining = deadline - self._clock()
        if remaining > 0:
            self._sleep(remaining)
            return deadline
        if -remaining > MAX_CATCH_UP_S:
            return self._clock()  # too late to catch up safely: restart the schedule
        return deadline

    def _check_stop(self) -> None:
        if self.stop_requested():
            raise HardwareStopped(
                f"The turntable stopped at {self.angle_deg:.1f}° because the scan was asked "
                "to stop; the position was saved, so the scan can be resumed.")

    def home(self) -> None:
        """Find 0 degrees: with an endstop, turn until it triggers; without, go back to 0.

        Without a switch the turntable cannot measure where it is: 0 is the saved zero
        (set by hand with `scanner hal check --set-zero`, or where the platter stood when
        the station first started), and `position_known` stays False.
        """
        self._homed = False
        if self._endstop is None:
            self.move_to(0.0)
        else:
            self._seek_endstop()
            self._zero = "endstop"
            self._interrupted = False
        self._steps = 0
        self._target_deg = 0.0
        self._homed = True
        self._save()

    def _switch(self, active: bool, delay: float, deadline: float) -> tuple[bool, float]:
        """Read the switch up to `endstop_samples` times, one step interval apart, while the
        platter stands still; True only when every read says `active` (noise on a long
        cable never counts as a press)."""
        assert self._endstop is not None
        for i in range(self._samples):
            if self._endstop.is_active != active:
                return False, deadline
            if i + 1 < self._samples:
                deadline = self._wait_until(deadline + delay)
        return True, deadline

    def _seek_endstop(self) -> None:
        assert self._endstop is not None
        forward = self.settings.home_direction == "forward"
        delay = 1.0 / self._home_speed
        self.enable()
        try:
            deadline = self._clock()
            pressed, deadline = self._switch(True, delay, deadline)
            if pressed:
                # Already on the switch: back off first so we home on the same switch edge.
                self._set_direction(not forward)
                limit = math.ceil(BACK_OFF_MAX_DEG / 360.0 * self._spr)
                for _ in range(limit):
                    released, deadline = self._switch(False, delay, deadline)
                    if released:
                        break
                    self._check_stop()
                    self._step(not forward)
                    deadline = self._wait_until(deadline + delay)
                else:
                    raise TurntableError(
                        "The home switch stays pressed even after turning away from it: "
                        "check that it is not stuck and that `endstop_active_low` in "
                        "config/hal.toml matches its wiring."
                    )
            self._set_direction(forward)
            limit = math.ceil(self.settings.home_max_deg / 360.0 * self._spr)
            for _ in range(limit):
                pressed, deadline = self._switch(True, delay, deadline)
                if pressed:
                    return
                self._check_stop()
                self._step(forward)
                deadline = self._wait_until(deadline + delay)
            if self._switch(True, delay, deadline)[0]:
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
            "endstop_samples": self._samples,
            "position_steps": self._steps,
            "position_known": self.position_known,
            "position_note": self.position_note,
            "zero": self._zero,
        }
