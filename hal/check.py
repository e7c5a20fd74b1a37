"""`scanner hal check`: exercise the configured rig and say, in plain words, what worked.

No Flask here: the CLI wrapper in scanner_app/cli/hal.py only passes the settings and
an output function.
"""

from __future__ import annotations

import errno
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from hal.errors import HardwareError
from hal.factory import load_button, load_rig, rig_is_mock
from hal.interfaces import Rig
from hal.pins import pin_clashes
from hal.settings import HalSettings

OK = "✔"
FAILED = "✘"


def explain(exc: BaseException) -> str:
    """A maker-readable sentence for an exception raised by a driver."""
    if isinstance(exc, HardwareError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return exc.strerror or "The disk is full."
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename or 'no file name'})."
    if isinstance(exc, ValueError):
        return str(exc)
    return (f"Unexpected error ({type(exc).__name__}: {exc}). Please report it together with "
            "the output of this command.")


def _seconds(t: float) -> str:
    return f"{t:.1f} s"


def run_hal_check(settings: HalSettings, out: Callable[[str], None] = print,
                  set_zero: bool = False) -> bool:
    """Home, turn a quarter, swing the camera arm to its limits and back (when the rig has
    a tilt axis), light on, lock exposure, take a photo, light off, then the
    button and its status LED. With `set_zero`, first call where the platter stands 0°
    (the person turned it to its 0° mark), which is how a rig without a home switch gets a
    true zero.

    Prints one line per step and a summary; returns True when every step worked.
    """
    if rig_is_mock(settings):
        out("Checking the simulated hardware (SCANNER_HAL=mock): nothing physical moves.")
    else:
        out("Checking the Raspberry Pi hardware (SCANNER_HAL=pi).")
    clashes = pin_clashes(settings)
    if clashes:
        for problem in clashes:
            out(f"{FAILED} Pins: {problem}")
        out("Summary: two parts share a GPIO pin, so nothing was switched.")
        return False
    try:
        rig = load_rig(settings)
    except Exception as exc:
        out(f"{FAILED} Hardware setup: {explain(exc)}")
        out("Summary: the hardware could not be set up, so nothing else was tried.")
        return False

    failed: list[str] = []
    passed = 0

    def step(label: str, action: Callable[[], str | None]) -> None:
        nonlocal passed
        started = time.monotonic()
        try:
            detail = action()
        except Exception as exc:
            failed.append(label)
            out(f"{FAILED} {label}: {explain(exc)}")
            return
        passed += 1
        extra = f", {detail}" if detail else ""
        out(f"{OK} {label} ({_seconds(time.monotonic() - started)}{extra})")

    with tempfile.TemporaryDirectory(prefix="hal-check-") as tmp:
        with rig:
            if set_zero:
                step("0° set where the platter stands", lambda: _set_zero(rig))
            _run_steps(rig, Path(tmp), step)
        for problem in rig.close_errors:
            failed.append("Shutdown")
            out(f"{FAILED} Shutdown: {problem}")
    step("Button and status LED", lambda: _check_button(settings))

    total = passed + len(failed)
    if not failed:
        out(f"All {total} checks passed: the scanner hardware is ready.")
        return True
    out(f"{len(failed)} of {total} checks failed ({', '.join(failed)}). Fix the first "
        f"{FAILED} above, then run `scanner hal check` again.")
    return False


def _set_zero(rig: Rig) -> str:
    rig.turntable.set_zero_here()
    return "saved for every later scan"


def _run_steps(rig: Rig, tmp: Path, step: Callable[[str, Callable[[], str | None]], None]) -> None:
    turntable, camera, light = rig.turntable, rig.camera, rig.light

    def home() -> str:
        turntable.home()
        return f"now at 0°. {turntable.position_note}"

    def quarter_turn() -> str:
        turntable.move_to(90.0)
        return f"now at {turntable.angle_deg:.1f}°"

    def light_on() -> str | None:
        light.on()
        return None if rig.is_mock else "look: is the ring light on?"

    def lock() -> str:
        e = camera.lock_exposure()
        gains = f"colour gains {e.colour_gains[0]:.2f}/{e.colour_gains[1]:.2f}"
        return f"1/{round(1e6 / e.exposure_time_us)} s, gain {e.analogue_gain:.2f}, {gains}"

    def photo() -> str:
        info = camera.capture(tmp / "check.jpg", exif={"angle_deg": turntable.angle_deg,
                                                       "purpose": "hal check"})
        with Image.open(info.path) as img:
            img.verify()  # a truncated file would fail here
        size_kb = info.path.stat().st_size / 1024
        note = camera.describe().get("size_note")
        return f"{info.width}×{info.height}, {size_kb:.0f} kB" + (f"; {note}" if note else "")

    def light_off() -> None:
        light.off()

    step("Turntable homed", home)
    step("Turntable turned a quarter turn", quarter_turn)
    if rig.tilt is not None:
        _tilt_steps(rig, step)
    step("Light switched on", light_on)
    step("Exposure metered and locked", lock)
    step("Camera took a photo", photo)
    step("Light switched off", light_off)


def _tilt_steps(rig: Rig, step: Callable[[str, Callable[[], str | None]], None]) -> None:
    """Swing the camera arm to both limits and back to where it stood, so a wrong limit,
    a reversed motor or a stalled arm shows before a scan relies on it."""
    tilt = rig.tilt
    assert tilt is not None
    start = tilt.elevation_deg  # before homing: where the person left the arm
    look = "" if rig.is_mock else "; look: did the arm move?"

    def to(elevation: float, home: bool = False) -> Callable[[], str]:
        def move() -> str:
            if home:  # inside the step, so a stuck home switch is reported like a move
                tilt.home()
            tilt.move_to(elevation)
            return f"now at {tilt.elevation_deg:.1f}°{look}"
        return move

    step(f"Camera arm tilted down to its lower limit ({tilt.min_elevation_deg:g}°)",
         to(tilt.min_elevation_deg, home=True))
    step(f"Camera arm tilted up to its upper limit ({tilt.max_elevation_deg:g}°)",
         to(tilt.max_elevation_deg))
    # Clamp: a saved position outside today's limits would be refused.
    back = min(max(start, tilt.min_elevation_deg), tilt.max_elevation_deg)
    step(f"Camera arm back where it stood ({back:g}°)", to(back))


def _check_button(settings: HalSettings) -> str:
    """Open the button, blink its LED through the states, report whether it is held now."""
    try:
        button = load_button(settings)
    except Exception as exc:
        # On a Pi the running button daemon owns these pins (one owner per device).
        raise HardwareError(f"{explain(exc)} If 'scanner button' or 'scanner run' is running, "
                            "it owns the button: stop it to check the button.") from exc
    try:
        for state in ("busy", "error", "idle"):
            button.set_status(state)
        held = button.is_pressed
    finally:
        button.close()
    if held:
        return "LED switched; the button reads as pressed right now: check its wiring"
    return "LED switched on, blinking and off; the button reads as released"
