"""Rig chores outside a scan: "here is 0°", and leaving the hardware safe after a crash.

`safe_off` is what the worker's systemd unit runs after the worker stopped (ExecStopPost=):
a killed worker cannot switch anything off, and on a Raspberry Pi a released GPIO keeps its
last level, so the motor driver could stay enabled (hot motor) and the light on.
"""

from __future__ import annotations

import logging

from hal.mock.platter import MockPlatter
from hal.position import PositionStore, RigPosition
from hal.settings import HalSettings

log = logging.getLogger(__name__)


def set_zero_here(settings: HalSettings) -> str:
    """Call the platter's current place 0° and save it; returns a sentence for people.

    Only the saved position changes: nothing moves and no GPIO is touched, so it is safe
    with the motor off while the platter was turned by hand to its 0° mark.
    """
    store = PositionStore(settings.position_file)
    old = store.load()
    spr = (settings.mock.steps_per_rev if settings.driver == "mock"
           else settings.turntable.steps_per_platter_rev)
    store.save(RigPosition(steps=0, steps_per_rev=spr, zero="hand"))
    was = ""
    if old is not None and old.steps_per_rev:
        was = f" (it was counted as {old.steps / old.steps_per_rev * 360.0 % 360.0:.1f}°)"
    return f"The platter's current position is now 0°{was}; it is saved in " \
           f"{settings.position_file}."


def safe_off(settings: HalSettings) -> list[str]:
    """Switch the motor driver and the light off; returns what was done, one sentence each.

    Never raises: it runs when something already went wrong.
    """
    done: list[str] = []
    if settings.driver == "mock":
        MockPlatter(settings.platter_file).energise(False)
        return ["The simulated motor is off (the simulated light is off with its process)."]
    try:
        from hal.pi.safety import pi_safe_off  # gpiozero only on the Pi path
    except Exception as exc:  # noqa: BLE001 - a sentence, never a traceback
        return [f"Could not load the GPIO library to switch the hardware off: {exc}."]
    try:
        done = pi_safe_off(settings)
    except Exception as exc:  # noqa: BLE001 - a sentence, never a traceback
        log.exception("safe-off failed")
        done = [f"Could not switch the hardware off: {exc}."]
    return done or ["Nothing was configured to switch off."]
