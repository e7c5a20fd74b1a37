"""The simulated camera arm: its TRUE elevation (a file in the data dir, like the mock
platter's angle) and a motorised tilt that moves it.

Without a motorised tilt (`[hal.tilt] driver = "none"`) the arm is still there: the operator
sets it by hand, which a test does with `MockArm.set_true_elevation`. The mock camera photographs
the arm's true elevation, so a guided ring taken before the "operator" moved the arm shows it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from hal.tilt import TiltAxis, TiltPositionStore
from hal.tilt_settings import TiltSettings


class MockArm:
    """True elevation of the simulated arm; `path=None` keeps it in memory only."""

    def __init__(self, path: Path | str | None, rest_elevation_deg: float) -> None:
        self._store = TiltPositionStore(path)
        self._rest = float(rest_elevation_deg)
        self._memory: float | None = None
        self._lock = threading.Lock()

    def true_elevation(self) -> float:
        saved = self._store.load() if self._store.path else self._memory
        return self._rest if saved is None else saved

    def set_true_elevation(self, elevation_deg: float) -> None:
        """Set the arm by hand (the operator's step of a guided ring)."""
        with self._lock:
            self._memory = float(elevation_deg)
            self._store.save(float(elevation_deg))


class MockTilt(TiltAxis):
    """A motorised arm that believes what it commanded and moves the true arm with it."""

    def __init__(self, settings: TiltSettings, arm: MockArm, seconds_per_deg: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_moved: Callable[[float], None] | None = None) -> None:
        super().__init__(settings)
        self.arm = arm
        self._seconds_per_deg = float(seconds_per_deg)
        self._sleep = sleep
        self._on_moved = on_moved
        self._enabled = False
        self.moves = 0

    @property
    def elevation_deg(self) -> float:
        return self.arm.true_elevation()

    @property
    def position_known(self) -> bool:
        return True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def _move(self, elevation_deg: float) -> None:
        self.raise_if_stopped()
        self._enabled = True
        delta = abs(elevation_deg - self.elevation_deg)
        if delta and self._seconds_per_deg:
            self._sleep(delta * self._seconds_per_deg)
        self.arm.set_true_elevation(elevation_deg)
        self.moves += 1
        if self._on_moved is not None:
            self._on_moved(elevation_deg)

    def disable(self) -> None:
        self._enabled = False

    def close(self) -> None:
        self.disable()
