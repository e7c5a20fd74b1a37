"""The simulated platter as a physical object: its TRUE angle, apart from any belief.

The driver (MockTurntable) only believes where the platter is, like the Pi drivers do;
this file is where it really is. It lives in the data dir, is updated as the platter
moves, and survives the driver's process being killed, so a test (or another process)
can compare the truth with what the station recorded, or turn the platter "by hand"
with `set_true_angle` while the motor is off.

A released (unpowered) rotor falls into the nearest full-step detent, so while the motor
is off the true angle is the commanded one snapped to `detent_deg`; energising the motor
pulls the rotor back to its commanded microstep.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hal.atomic import atomic_write_bytes


@dataclass(frozen=True)
class PlatterState:
    rotor_deg: float = 0.0  # where the coils pull the rotor (unbounded, degrees)
    energised: bool = False


class MockPlatter:
    """True angle of the simulated platter; `path=None` keeps it in memory only."""

    def __init__(self, path: Path | str | None = None, detent_deg: float = 0.0) -> None:
        self.path = Path(path) if path else None
        self.detent_deg = float(detent_deg)
        self._memory = PlatterState()
        self._lock = threading.Lock()

    # -- what a test (or the camera) sees -------------------------------------------------
    def true_angle(self) -> float:
        """The platter's physical angle in [0, 360)."""
        state = self.state()
        angle = state.rotor_deg
        if not state.energised and self.detent_deg > 0:
            angle = round(angle / self.detent_deg) * self.detent_deg
        return angle % 360.0

    def set_true_angle(self, angle_deg: float) -> None:
        """Turn the platter by hand (or perturb it in a test) to `angle_deg`."""
        with self._lock:
            self._write(replace(self.state(), rotor_deg=float(angle_deg)))

    # -- what the motor does --------------------------------------------------------------
    def turn_by(self, delta_deg: float) -> None:
        with self._lock:
            state = self.state()
            self._write(replace(state, rotor_deg=state.rotor_deg + float(delta_deg)))

    def energise(self, on: bool) -> None:
        with self._lock:
            state = self.state()
            if state.energised != on:
                self._write(replace(state, energised=on))

    def state(self) -> PlatterState:
        if self.path is None:
            return self._memory
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return PlatterState(rotor_deg=float(data["rotor_deg"]),
                                energised=bool(data["energised"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return PlatterState()

    def _write(self, state: PlatterState) -> None:
        self._memory = state
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(asdict(state)).encode())
