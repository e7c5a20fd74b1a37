"""Turn gpiozero's set-up errors into sentences about the scanner's wiring."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from gpiozero import Device, DigitalInputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse, GPIOZeroError

from hal.errors import HardwareError, TurntableError

NO_GPIO = (
    "No GPIO pins were found: this does not look like a Raspberry Pi. On a laptop set "
    "SCANNER_HAL=mock to use the simulated rig; on a Pi run `sudo apt install python3-lgpio` "
    "and make sure the virtualenv was created with --system-site-packages."
)


@contextlib.contextmanager
def gpio_errors(what: str, error: type[HardwareError] = HardwareError) -> Iterator[None]:
    try:
        yield
    except BadPinFactory as exc:
        raise error(NO_GPIO) from exc
    except GPIOPinInUse as exc:
        raise error(
            f"The GPIO pin for {what} is already used by another part of the scanner or "
            f"another program ({exc}): give each part its own pin in config/hal.toml."
        ) from exc
    except GPIOZeroError as exc:
        raise error(
            f"Could not set up {what}: {exc or type(exc).__name__}. Check its pin numbers in "
            "config/hal.toml (BCM numbers, as printed by the `pinout` command)."
        ) from exc


def close_all(*devices: Device | None) -> None:
    """Close gpiozero devices, ignoring ones that were never made or are already closed."""
    for device in devices:
        if device is not None:
            with contextlib.suppress(Exception):
                device.close()


def open_endstop(pin: int | str | None, active_low: bool, pin_factory=None
                 ) -> DigitalInputDevice | None:
    """The turntable's optional home switch (None when not wired); pulled up when it
    closes to ground."""
    if pin is None:
        return None
    with gpio_errors("the home switch", TurntableError):
        return DigitalInputDevice(pin, pull_up=active_low, pin_factory=pin_factory)
