"""What the rest of the station codes against: Camera, Turntable, Light, StartButton, Rig.

Like gpiozero's Device / pin-factory split, callers only see these classes; which driver sits
behind them (simulated or Raspberry Pi) is chosen by hal.factory from the settings.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.angles import shortest_delta

if TYPE_CHECKING:
    from hal.tilt import TiltAxis

log = logging.getLogger(__name__)

STATUSES = ("idle", "busy", "error")


class Device(ABC):
    """Something that holds hardware: close() releases it; usable as a context manager."""

    @abstractmethod
    def close(self) -> None:
        """Release the hardware. Safe to call more than once."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable facts about the device, stored with each scan."""
        return {"type": type(self).__name__}

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ExposureSettings:
    """Exposure values metered once and then held for a whole scan."""

    exposure_time_us: int
    analogue_gain: float
    colour_gains: tuple[float, float]  # (red, blue) white-balance gains
    lens_position: float | None = None  # dioptres; None when the lens is fixed/unknown

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExposureSettings:
        """The inverse of as_dict (what a scan saved), for re-applying it on resume."""
        lens = data.get("lens_position")
        red, blue = (float(g) for g in data["colour_gains"])
        return cls(exposure_time_us=int(data["exposure_time_us"]),
                   analogue_gain=float(data["analogue_gain"]), colour_gains=(red, blue),
                   lens_position=None if lens is None else float(lens))

    def as_dict(self) -> dict[str, Any]:
        return {
            "exposure_time_us": self.exposure_time_us,
            "analogue_gain": self.analogue_gain,
            "colour_gains": list(self.colour_gains),
            "lens_position": self.lens_position,
        }


@dataclass(frozen=True)
class CaptureInfo:
    """What a capture wrote: the finished JPEG and the camera settings used for it."""

    path: Path
    width: int
    height: int
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "width": self.width, "height": self.height,
                "settings": dict(self.settings)}


class Camera(Device):
    """A still camera. It opens itself on first use; `close()` always releases it."""

    @abstractmethod
    def open(self) -> None:
        """Start the camera (idempotent)."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @property
    @abstractmethod
    def resolution(self) -> tuple[int, int]:
        """(width, height) of the JPEGs `capture` writes."""

    @abstractmethod
    def set_resolution(self, size: tuple[int, int] | None) -> None:
        """Use another (width, height) from now on; None goes back to the configured one.

        An open camera is restarted at the new size, which drops a locked exposure: lock it
        again afterwards.
        """

    @property
    @abstractmethod
    def locked_exposure(self) -> ExposureSettings | None:
        """The locked values, or None while exposure and white balance are automatic."""

    @abstractmethod
    def lock_exposure(self) -> ExposureSettings:
        """Meter once, then hold exposure time, gain and white balance until unlocked."""

    @abstractmethod
    def apply_exposure(self, exposure: ExposureSettings) -> ExposureSettings:
        """Hold exactly these values (what a scan saved before it was interrupted), confirmed
        on the frames; returns the values in effect."""

    @abstractmethod
    def unlock_exposure(self) -> None:
        """Go back to automatic exposure and white balance."""

    @abstractmethod
    def capture(
        self, path: Path, exif: dict[str, Any] | None = None, quality: int | None = None
    ) -> CaptureInfo:
        """Write one complete JPEG to `path` atomically (never a half file at `path`).

        `exif` is stored in the JPEG: "angle_deg" goes to ImageDescription, "datetime"
        (datetime or ISO text; default: now) to DateTimeOriginal, and the whole dict as
        JSON in UserComment.
        """


class Turntable(Device):
    """A platter turned by a motor. Angles are degrees, 0 is home, positive is forward.

    `move_to` takes the shortest way round (at most 180 degrees, ties go forward);
    `rotate_by` turns exactly the signed amount asked, even past a full turn. After each
    move the motor is switched off (de-energised, so it stays cool and quiet) unless
    `hold` is True or a `hold_position()` block is running: a scan holds the motor from its
    first move to its end, because a released microstepped rotor falls into a full-step
    detent and the recorded angles would no longer be true.

    `stop_check` (a cheap callable, e.g. `threading.Event().is_set`) is asked between
    steps; when it says True the move ends with HardwareStopped, position saved.
    """

    hold: bool = False
    stop_check: Callable[[], bool] | None = None

    @property
    @abstractmethod
    def angle_deg(self) -> float:
        """Current platter angle in [0, 360) as the driver believes it."""

    @property
    @abstractmethod
    def is_homed(self) -> bool: ...

    @property
    def position_known(self) -> bool:
        """True only when the angle is measured (home switch), not assumed."""
        return self.is_homed

    @property
    def position_note(self) -> str:
        """One sentence saying whether the angle is known or assumed, and what to do."""
        if self.position_known:
            return "The position is known."
        return "The position is assumed: there is no home switch to check it against."

    @abstractmethod
    def home(self) -> None:
        """Find the home position and call it 0 degrees."""

    @abstractmethod
    def set_zero_here(self) -> None:
        """Call wherever the platter stands now 0 degrees (and save that)."""

    @abstractmethod
    def rotate_by(self, delta_deg: float) -> None:
        """Turn by a signed amount (blocking)."""

    def move_to(self, angle_deg: float) -> None:
        """Turn to an absolute angle the shortest way round (blocking)."""
        self.rotate_by(shortest_delta(self.angle_deg, angle_deg))

    @abstractmethod
    def enable(self) -> None:
        """Energise the motor (holds the platter in place)."""

    @abstractmethod
    def disable(self) -> None:
        """De-energise the motor (the platter turns freely by hand)."""

    @property
    @abstractmethod
    def is_enabled(self) -> bool: ...

    @contextlib.contextmanager
    def hold_position(self) -> Iterator[Turntable]:
        """Energise the motor now and keep it energised between moves inside the block;
        release it after (unless `hold` was already set, e.g. by hold_torque). Energising
        on entry matters: a released rotor sits in a detent, not at its microstep."""
        previous = self.hold
        self.hold = True
        try:
            self.enable()
            yield self
        finally:
            self.hold = previous
            if not previous:
                self.release()

    def release(self) -> None:
        """Idle: de-energise the motor (only when no scan needs the platter to stay put)."""
        self.disable()

    def stop_requested(self) -> bool:
        check = self.stop_check
        return bool(check is not None and check())


class Light(Device):
    """The ring light."""

    @abstractmethod
    def on(self, brightness: float = 1.0) -> None:
        """Switch on; brightness 0..1 is a fraction of the configured full brightness."""

    @abstractmethod
    def off(self) -> None: ...

    @property
    @abstractmethod
    def is_on(self) -> bool: ...

    @contextlib.contextmanager
    def lit(self, brightness: float = 1.0) -> Iterator[Light]:
        """`with light.lit(): ...` switches the light off again even when the body fails."""
        self.on(brightness)
        try:
            yield self
        finally:
            self.off()


class StartButton(Device):
    """The start button and its status LED.

    `when_pressed` runs after a short press is released; `when_held` runs once the button
    has been held for the configured hold time (and then the release does not count as a
    press), so "press to start, hold to cancel" never does both.
    """

    when_pressed: Callable[[], None] | None = None
    when_held: Callable[[], None] | None = None

    @abstractmethod
    def set_status(self, state: str) -> None:
        """Drive the status LED: "idle" = off, "busy" = on, "error" = blinking."""

    @property
    @abstractmethod
    def status(self) -> str: ...

    @property
    @abstractmethod
    def is_pressed(self) -> bool:
        """Whether the button is down right now (for `scanner hal check`)."""


def check_status(state: str) -> str:
    if state not in STATUSES:
        raise ValueError(f"Unknown button status {state!r}: use one of {', '.join(STATUSES)}.")
    return state


def fire(callback: Callable[[], None] | None, what: str) -> None:
    """Run a user callback; a failing callback is logged, never kills the GPIO thread."""
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("The %s callback failed", what)


class Rig:
    """Camera + turntable + light, owned by one process (the worker) at a time.

    The start button is not part of the rig: the button daemon owns it (one owner per
    device). `close()` switches the light off, de-energises the motor and closes the camera,
    each even if another one fails.
    """

    def __init__(self, driver: str, camera: Camera, turntable: Turntable, light: Light,
                 tilt: TiltAxis | None = None) -> None:
        self.driver = driver
        self.camera = camera
        self.turntable = turntable
        self.light = light
        # None: no tilt axis; the operator sets the camera's elevation (guided rings).
        self.tilt = tilt
        self.close_errors: list[str] = []

    @property
    def is_mock(self) -> bool:
        return self.driver == "mock"

    def close(self) -> None:
        """Light off, motor off, camera closed; failures are logged and kept in close_errors."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("switch the light off", self.light.off),
            ("close the light", self.light.close),
            ("switch the motor off", self.turntable.disable),
            ("close the turntable", self.turntable.close),
            ("close the camera", self.camera.close),
        ]
        if self.tilt is not None:
            steps += [("switch the tilt axis off", self.tilt.disable),
                      ("close the tilt axis", self.tilt.close)]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep going: the next device must still be released
                log.exception("Could not %s", what)
                self.close_errors.append(f"Could not {what}: {exc}")

    def set_stop_check(self, check: Callable[[], bool] | Any | None) -> None:
        """Ask `check()` (or `check.is_set()` for a threading.Event) between motor steps."""
        if check is not None and hasattr(check, "is_set"):
            check = check.is_set
        self.turntable.stop_check = check
        if self.tilt is not None:
            self.tilt.stop_check = check

    @contextlib.contextmanager
    def hold_position(self) -> Iterator[Rig]:
        """`with rig.hold_position():` around a whole scan keeps the motor driver enabled
        from the first move to the end, so every frame is taken at a held microstep."""
        with self.turntable.hold_position():
            yield self

    def release(self) -> None:
        """Idle the rig: motor driver off and light off (the camera stays open)."""
        self.turntable.release()
        self.light.off()

    @property
    def position_known(self) -> bool:
        return self.turntable.position_known

    def describe(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "camera": self.camera.describe(),
            "turntable": self.turntable.describe(),
            "light": self.light.describe(),
            "tilt": self.tilt.describe() if self.tilt is not None else {"driver": "none"},
        }

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
