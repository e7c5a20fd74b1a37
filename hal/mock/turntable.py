"""Simulated turntable: a stepper driver that believes a position, turning a MockPlatter
whose true angle is kept apart (see hal.mock.platter).

Like the Pi drivers it counts whole steps, saves them (PositionStore) before and after each
move, restores them when built again, and knows its position only after homing on a switch
(`endstop=True`; the mock's switch sits at the platter's true 0°). Without a switch its 0°
is assumed, and a platter turned by hand, or a process killed mid-move, makes the belief
differ from the truth, exactly as on the real rig.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hal.angles import normalize, shortest_delta
from hal.errors import HardwareStopped, TurntableError
from hal.interfaces import Turntable
from hal.mock.platter import MockPlatter
from hal.position import PositionStore, RigPosition, position_note

DEFAULT_STEPS_PER_REV = 57600  # 0.00625° a step: every whole or half degree is a step


class MockTurntable(Turntable):
    """Moves at `seconds_per_rev` (8 s per turn by default, like a slow real platter).

    The angle changes during a move in small slices, so another thread polling `angle_deg`
    (a progress bar) sees the platter turn. `seconds_per_rev=0` moves instantly.
    """

    def __init__(
        self,
        seconds_per_rev: float = 8.0,
        start_angle_deg: float = 0.0,
        home_direction: str = "forward",
        hold: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        slice_seconds: float = 0.05,
        *,
        steps_per_rev: int = DEFAULT_STEPS_PER_REV,
        platter: MockPlatter | None = None,
        store: PositionStore | None = None,
        endstop: bool = True,
    ) -> None:
        self.seconds_per_rev = float(seconds_per_rev)
        self.home_direction = home_direction
        self.hold = hold
        self.stop_check = None
        self.platter = platter or MockPlatter()
        self.has_endstop = endstop
        self._sleep = sleep
        self._slice = slice_seconds
        self._spr = int(steps_per_rev)
        self._store = store
        self._steps = round(start_angle_deg / 360.0 * self._spr)
        self._target_deg = float(start_angle_deg)  # commanded, unbounded: no rounding creep
        self._zero = "assumed"
        self._interrupted = False
        self._homed = False
        self._enabled = False
        self._closed = False
        self._lock = threading.Lock()
        self.travelled_deg = 0.0  # total distance moved, both directions, for tests
        saved = store.load() if store is not None else None
        if saved is not None:
            steps = saved.steps
            if saved.steps_per_rev and saved.steps_per_rev != self._spr:
                steps = round(steps * self._spr / saved.steps_per_rev)
            self._steps = int(steps)
            self._target_deg = self._steps / self._spr * 360.0
            self._zero = saved.zero
            self._interrupted = saved.moving_to is not None
        elif platter is None:
            self.platter.set_true_angle(start_angle_deg)

    # -- belief ---------------------------------------------------------------------------
    @property
    def angle_deg(self) -> float:
        return normalize(self._steps / self._spr * 360.0)

    @property
    def position_steps(self) -> int:
        return self._steps

    @property
    def is_homed(self) -> bool:
        return self._homed

    @property
    def position_known(self) -> bool:
        return self.has_endstop and self._homed and not self._interrupted

    @property
    def position_note(self) -> str:
        return position_note(RigPosition(steps=self._steps, zero=self._zero),
                             self.has_endstop, self._homed, self._interrupted)[1]

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        self._check_open()
        self._enabled = True
        self.platter.energise(True)

    def disable(self) -> None:
        self._enabled = False
        self.platter.energise(False)

    # -- moves ----------------------------------------------------------------------------
    def home(self) -> None:
        """With the simulated switch: turn to the platter's TRUE 0°; without: to the
        believed 0° (which is only as good as the saved position)."""
        self._homed = False
        if self.has_endstop:
            true = self.platter.true_angle()
            distance = (360.0 - true) % 360.0 if self.home_direction == "forward" else -true
            self._run(round(distance / 360.0 * self._spr))
            self._zero = "endstop"
            self._interrupted = False
        else:
            self._run(round(shortest_delta(self.angle_deg, 0.0) / 360.0 * self._spr))
        self._steps = 0
        self._target_deg = 0.0
        self._homed = True
        self._save()

    def set_zero_here(self) -> None:
        self._check_open()
        self._steps = 0
        self._target_deg = 0.0
        self._zero = "hand"
        self._interrupted = False
        self._save()

    def rotate_by(self, delta_deg: float) -> None:
        target = self._target_deg + float(delta_deg)
        try:
            self._run(round(target / 360.0 * self._spr) - self._steps)
        except BaseException:
            self._target_deg = self._steps / self._spr * 360.0
            raise
        self._target_deg = target

    def move_to(self, angle_deg: float) -> None:
        self.rotate_by(shortest_delta(normalize(self._target_deg), angle_deg))

    def _run(self, n: int) -> None:
        self._check_open()
        if n == 0:
            return
        with self._lock:
            self._save(moving_to=self._steps + n)
            start = self._steps
            try:
                self.enable()
                duration = abs(n) / self._spr * self.seconds_per_rev
                done = 0.0
                while duration > 0 and duration - done > 1e-9:
                    if self.stop_requested():
                        raise HardwareStopped(
                            f"The turntable stopped at {self.angle_deg:.1f}° because the "
                            "scan was asked to stop; the position was saved.")
                    part = min(self._slice, duration - done)
                    self._sleep(part)
                    done += part
                    self._advance_to(start + round(n * done / duration))
                self._advance_to(start + n)
            finally:
                self.travelled_deg += abs(self._steps - start) / self._spr * 360.0
                self._save()
                if not self.hold:
                    self.disable()

    def _advance_to(self, steps: int) -> None:
        # The truth moves with the steps actually made, and is on disk before the belief.
        self.platter.turn_by((steps - self._steps) / self._spr * 360.0)
        self._steps = steps

    def _save(self, moving_to: int | None = None) -> None:
        if self._store is not None:
            self._store.save(RigPosition(steps=self._steps, steps_per_rev=self._spr,
                                         moving_to=moving_to, zero=self._zero))

    def _check_open(self) -> None:
        if self._closed:
            raise TurntableError("The turntable was already closed; load the rig again.")

    def close(self) -> None:
        self.disable()
        self._closed = True

    def describe(self) -> dict[str, Any]:
        return {"type": "mock", "seconds_per_rev": self.seconds_per_rev,
                "home_direction": self.home_direction, "steps_per_platter_rev": self._spr,
                "endstop": self.has_endstop, "position_steps": self._steps,
                "position_known": self.position_known, "position_note": self.position_note,
                "zero": self._zero}
