"""Pick and load the drivers named by the settings.

Drivers are imported here, on demand, and never at `import hal`: the simulated rig must
load on a laptop that has neither gpiozero's hardware libraries nor picamera2.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hal.interfaces import Rig, StartButton
from hal.settings import DRIVERS, HalSettings


def _driver_module(driver: str) -> ModuleType:
    if driver not in DRIVERS:
        raise ValueError(
            f"Unknown hardware driver {driver!r}: use 'mock' for the simulated rig or 'pi' "
            "for the real camera and motors on a Raspberry Pi (SCANNER_HAL=mock|pi)."
        )
    return importlib.import_module(f"hal.{driver}.rig")


def load_rig(settings: HalSettings) -> Rig:
    """Camera, turntable and light for `settings.driver`; close it (or use `with`)."""
    return _driver_module(settings.driver).build_rig(settings)


def load_button(settings: HalSettings) -> StartButton:
    """The start button and status LED, owned by the button daemon (not part of the rig)."""
    return _driver_module(settings.driver).build_button(settings)


def rig_is_mock(settings: HalSettings) -> bool:
    """True when the station drives simulated hardware (the web UI shows a banner)."""
    return settings.driver == "mock"
