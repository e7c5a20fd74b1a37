"""Drive the motor driver's ENABLE (or the ULN2003 coils) and the light to off, then let go.

Run after the worker stopped (systemd ExecStopPost=), when nobody else holds the pins. A
killed worker's lines keep their last level on Raspberry Pi OS (unless
`dtparam=strict_gpiod`), so the driver could stay enabled and the light on: this drives
them to off. gpiozero hands a closed lgpio pin back as an input without pull, so what
keeps them off afterwards is the pull resistor the wiring guide asks for (10 kΩ pull-up
on an active-low ENABLE, 10 kΩ pull-down on the light MOSFET's gate).
"""

from __future__ import annotations

from gpiozero.pins import Factory

from hal.pi.gpio import close_all, gpio_errors, prepare_lgpio_workdir, quiet_output
from hal.settings import HalSettings


def pi_safe_off(settings: HalSettings, pin_factory: Factory | None = None) -> list[str]:
    prepare_lgpio_workdir(settings.data_path / "run")
    done: list[str] = []
    t, light = settings.turntable, settings.light
    if t.driver == "uln2003":
        motor = [("the motor coils", p, True) for p in (t.pins.in1, t.pins.in2, t.pins.in3,
                                                       t.pins.in4) if p is not None]
    elif t.pins.enable is not None:
        motor = [("the motor driver", t.pins.enable, not t.pins.enable_active_low)]
    else:
        motor = []
        done.append("The motor driver has no ENABLE pin configured, so it cannot be "
                    "switched off from the Pi.")
    parts = motor + ([("the light", light.pin, light.active_high)]
                     if light.pin is not None else [])
    switched: set[str] = set()
    for what, pin, active_high in parts:
        try:
            with gpio_errors(what):
                device = quiet_output(pin, active_high=active_high, pin_factory=pin_factory)
            close_all(device)  # inactive now; the line keeps that level when released
            switched.add(what)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next part
            done.append(f"Could not switch {what} off: {exc}")
    done.extend(f"Switched {what} off." for what in sorted(switched))
    return done
