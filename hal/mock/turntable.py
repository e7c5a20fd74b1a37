"""Simulated turntable: knows its angle, takes time to move, and has a home switch at 0."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hal.angles import EPSILON_DEG, normalize
from hal.errors import TurntableError
from hal.interfaces import Turntable


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
    ) -> None:
        self.seconds_per_rev = float(seconds_per_rev)
        self.home_direction = home_direction
        self.hold = hold
        self._sleep = sleep
        self._slice = slice_seconds
        # Unbounded commanded angle: summing many small moves never drifts off a step.
        self._position = float(start_angle_deg)
        self._homed = False
        self._enabled = False
        self._closed = False
        self._lock = threading.Lock()
        self.travelled_deg = 0.0  # total distance moved, both directions, for tests

    @property
    def angle_deg(self) -> float:
        return normalize(self._position)

    @property
    def is_homed(self) -> bool:
        return self._homed

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        self._check_open()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def home(self) -> None:
        """Turn in the home direction until the (simulated) switch at 0 degrees."""
        angle = self.angle_deg
        if self.home_direction == "forward":
            distance = (360.0 - angle) % 360.0
        else:
            distance = -angle
        self._move(distance)
        self._position = 0.0
        self._homed = True

    def rotate_by(self, delta_deg: float) -> None:
        self._move(float(delta_deg))

    def _move(self, delta: float) -> None:
        self._check_open()
        with self._lock:
            self.enable()
            try:
                start = self._position
                duration = abs(delta) / 360.0 * self.seconds_per_rev
                done = 0.0
                while duration > 0 and duration - done > 1e-9:
                    step = min(self._slice, duration - done)
                    self._sleep(step)
                    done += step
                    self._position = start + delta * done / duration
                self._position = start + delta
                if abs(self._position - round(self._position)) < EPSILON_DEG:
                    self._position = float(round(self._position))
                self.travelled_deg += abs(delta)
            finally:
                if not self.hold:
                    self.disable()

    def _check_open(self) -> None:
        if self._closed:
            raise TurntableError("The turntable was already closed; load the rig again.")

    def close(self) -> None:
        self.disable()
        self._closed = True

    def describe(self) -> dict[str, Any]:
        return {"type": "mock", "seconds_per_rev": self.seconds_per_rev,
                "home_direction": self.home_direction}
