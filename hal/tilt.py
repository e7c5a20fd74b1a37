"""The camera arm's tilt axis: what the scan codes against, whatever turns the arm.

Elevation is the angle between the camera's line of sight and the platter (degrees, 0 =
level, positive = looking down). A rig has a tilt axis (stepper or servo: the scan moves it
between rings) or none (`Rig.tilt is None`: the operator sets the elevation by hand and the
scan runs its rings guided). Every move is checked against the configured limits first, so
a ring outside them never drives the arm into its stops.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hal.atomic import atomic_write_bytes
from hal.errors import HardwareError, HardwareStopped
from hal.interfaces import Device
from hal.tilt_settings import TiltSettings


class TiltError(HardwareError):
    default_message = "The camera tilt axis reported a problem."


class TiltAxis(Device):
    """A motorised camera arm. `elevation_deg` is where the driver believes the arm is."""

    stop_check: Callable[[], bool] | None = None

    def __init__(self, settings: TiltSettings) -> None:
        self.settings = settings

    @property
    def min_elevation_deg(self) -> float:
        return self.settings.min_elevation_deg

    @property
    def max_elevation_deg(self) -> float:
        return self.settings.max_elevation_deg

    @property
    @abstractmethod
    def elevation_deg(self) -> float: ...

    @property
    def position_known(self) -> bool:
        """True when a switch (or an absolute actuator such as a servo) fixes the angle."""
        return False

    def home(self) -> None:
        """Find the elevation reference; without a switch the saved position stands."""

    def move_to(self, elevation_deg: float) -> None:
        """Tilt to an elevation within the limits (blocking); TiltError outside them."""
        check_elevation(self.settings, elevation_deg)
        self._move(float(elevation_deg))

    @abstractmethod
    def _move(self, elevation_deg: float) -> None: ...

    @abstractmethod
    def disable(self) -> None:
        """Stop driving the arm (a stepper's coils off; a servo's pulses stop)."""

    def stop_requested(self) -> bool:
        check = self.stop_check
        return bool(check is not None and check())

    def raise_if_stopped(self) -> None:
        if self.stop_requested():
            raise HardwareStopped(
                "The camera arm stopped because the scan was asked to stop; its position "
                "was saved, so the scan can be resumed.")

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "driver": self.settings.driver,
                "elevation_deg": self.elevation_deg,
                "min_elevation_deg": self.min_elevation_deg,
                "max_elevation_deg": self.max_elevation_deg,
                "position_known": self.position_known}


def elevation_problem(settings: TiltSettings, elevation_deg: float) -> str | None:
    """The sentence refusing an elevation outside the arm's limits, or None if it fits."""
    lo, hi = settings.min_elevation_deg, settings.max_elevation_deg
    if lo - 1e-9 <= elevation_deg <= hi + 1e-9:
        return None
    return (f"The camera cannot be tilted to {elevation_deg:g}°: this rig's arm goes from "
            f"{lo:g}° to {hi:g}° (hal.tilt limits in config/hal.toml). Choose an elevation "
            "in that range.")


def check_elevation(settings: TiltSettings, elevation_deg: float) -> None:
    problem = elevation_problem(settings, elevation_deg)
    if problem:
        raise TiltError(problem)


class TiltPositionStore:
    """The arm's elevation kept in a small JSON file, so a new job or a restart knows it."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path else None

    def load(self) -> float | None:
        if self.path is None:
            return None
        try:
            return float(json.loads(self.path.read_text(encoding="utf-8"))["elevation_deg"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def save(self, elevation_deg: float) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, json.dumps({"elevation_deg": elevation_deg}).encode())
