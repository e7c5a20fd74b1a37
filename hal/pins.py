"""Pins of the rig and of the button checked against each other, from the settings alone.

The worker owns the rig and the button daemon owns the button: two processes, so gpiozero's
own "pin in use" check never sees a clash between them. This one does, before anything is
switched.
"""

from __future__ import annotations

from hal.settings import HalSettings, Pin


def _key(pin: Pin) -> str | None:
    if pin is None:
        return None
    text = str(pin).strip().upper()
    if text.isdigit():
        return f"GPIO{int(text)}"
    if text.startswith("GPIO") and text[4:].isdigit():
        return f"GPIO{int(text[4:])}"
    return text


def rig_pins(settings: HalSettings) -> list[tuple[str, Pin]]:
    t, p = settings.turntable, settings.turntable.pins
    if t.driver == "uln2003":
        motor = [("the ULN2003 IN1", p.in1), ("the ULN2003 IN2", p.in2),
                 ("the ULN2003 IN3", p.in3), ("the ULN2003 IN4", p.in4)]
    else:
        motor = [("the stepper STEP", p.step), ("the stepper DIR", p.dir),
                 ("the stepper ENABLE", p.enable)]
    tilt, tp = settings.tilt, settings.tilt.pins
    arm: list[tuple[str, Pin]] = []
    if tilt.driver == "step_dir":
        arm = [("the tilt STEP", tp.step), ("the tilt DIR", tp.dir),
               ("the tilt ENABLE", tp.enable), ("the tilt home switch", tp.endstop)]
    elif tilt.driver == "servo":
        arm = [("the tilt servo", tp.servo)]
    return [*motor, ("the home switch", p.endstop), ("the light", settings.light.pin), *arm]


def button_pins(settings: HalSettings) -> list[tuple[str, Pin]]:
    b = settings.button
    return [("the start button", b.pin), ("the status LED", b.led_pin)]


def pin_clashes(settings: HalSettings) -> list[str]:
    """One sentence per GPIO that two parts of the station would share."""
    seen: dict[str, str] = {}
    problems: list[str] = []
    for what, pin in rig_pins(settings) + button_pins(settings):
        key = _key(pin)
        if key is None:
            continue
        if key in seen:
            problems.append(f"{key} is set for both {seen[key]} and {what}: give each its "
                            "own pin in config/hal.toml.")
        else:
            seen[key] = what
    return problems
