"""Turntable on a 28BYJ-48 geared motor with a ULN2003 board (four coil pins IN1..IN4)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpiozero.pins import Factory

from hal.errors import TurntableError
from hal.pi.gpio import close_all, gpio_errors, open_endstop, quiet_output
from hal.pi.stepped_turntable import SteppedTurntable
from hal.position import PositionStore
from hal.settings import TurntableSettings

# Coil patterns (IN1, IN2, IN3, IN4). Full steps drive two coils at once (more torque);
# half steps alternate one and two coils (smoother, twice the steps per turn).
FULL_STEP = ((1, 1, 0, 0), (0, 1, 1, 0), (0, 0, 1, 1), (1, 0, 0, 1))
HALF_STEP = (
    (1, 0, 0, 0), (1, 1, 0, 0), (0, 1, 0, 0), (0, 1, 1, 0),
    (0, 0, 1, 0), (0, 0, 1, 1), (0, 0, 0, 1), (1, 0, 0, 1),
)


class Uln2003Turntable(SteppedTurntable):
    """`microsteps = 1` uses full steps, `2` half steps (twice as many per turn).

    The 28BYJ-48's gearbox is 63.68395:1 with 32 full steps per motor turn, so one output
    turn is 2037.886 full steps (4075.77 half steps), not the 2048 printed in many shops;
    these are the defaults for this driver (config: steps_per_rev = 32, gear_ratio =
    63.68395). Counting 2048 would drift by 3.6° every turn.

    There is no enable pin: "disabled" means all four coils off, which is also what keeps
    the little motor from getting hot between moves.
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
        self.sequence = HALF_STEP if settings.microsteps == 2 else FULL_STEP
        self._phase = 0
        made: list = []
        try:
            with gpio_errors("the ULN2003 board (IN1..IN4)", TurntableError):
                for pin in (pins.in1, pins.in2, pins.in3, pins.in4):
                    made.append(quiet_output(pin, pin_factory=pin_factory))
            self._coils = tuple(made)
            endstop = open_endstop(pins.endstop, pins.endstop_active_low, pin_factory)
            made.append(endstop)
        except Exception:
            close_all(*made)
            raise
        super().__init__(settings, endstop=endstop, sleep=sleep, clock=clock, store=store)

    def _write(self, pattern: tuple[int, ...]) -> None:
        # Switch coils off before others on, so no step ever has three coils energised.
        for coil, level in zip(self._coils, pattern, strict=True):
            if not level:
                coil.off()
        for coil, level in zip(self._coils, pattern, strict=True):
            if level:
                coil.on()

    def _step(self, forward: bool) -> None:
        reverse = self.settings.reverse
        self._phase = (self._phase + (1 if forward != reverse else -1)) % len(self.sequence)
        self._write(self.sequence[self._phase])

    def _set_direction(self, forward: bool) -> None:
        pass  # the direction is the order of the coil patterns

    def _energise(self) -> None:
        self._write(self.sequence[self._phase])

    def _deenergise(self) -> None:
        self._write((0, 0, 0, 0))

    def _close_pins(self) -> None:
        close_all(*self._coils, self._endstop)
