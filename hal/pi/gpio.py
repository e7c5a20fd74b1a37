"""GPIO set-up shared by the Pi drivers: outputs that never blip on, one sentence for
every set-up error, pins checked against each other, and lgpio's files out of the checkout.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gpiozero import Device, DigitalInputDevice, DigitalOutputDevice, PWMOutputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse, GPIOZeroError
from gpiozero.pins import Factory

from hal.errors import HardwareError, TurntableError

NO_GPIO = (
    "No GPIO pins were found: this does not look like a Raspberry Pi. On a laptop set "
    "SCANNER_HAL=mock to use the simulated rig; on a Pi run `sudo apt install python3-lgpio` "
    "and make sure the virtualenv was created with --system-site-packages."
)


def _lgpio_claim_output(pin: Any, state: bool) -> None:
    # gpiozero's default output_with_state() claims the line as an output (lgpio drives it
    # LOW) and only then writes the state: an active-low ENABLE would switch the driver on
    # for a moment. lgpio can claim with the level in one call.
    import lgpio  # only on a Pi, and only once LG_WD is set

    lgpio.gpio_claim_output(pin.factory._handle, pin._number, int(bool(state)))


# Pin classes (by name, so no backend is imported) that can claim an output at a level.
ATOMIC_CLAIMS: dict[str, Callable[[Any, bool], None]] = {"LGPIOPin": _lgpio_claim_output}


def _factory(pin_factory: Factory | None) -> Factory:
    if pin_factory is not None:
        return pin_factory
    if Device.pin_factory is None:
        Device.pin_factory = Device._default_pin_factory()
    return Device.pin_factory


def quiet_output(
    pin: int | str, *, active_high: bool = True, pwm: bool = False, frequency: float = 100.0,
    pin_factory: Factory | None = None,
) -> DigitalOutputDevice | PWMOutputDevice:
    """An output that starts inactive and is never driven active while it is set up."""
    factory = _factory(pin_factory)
    pin_obj = factory.pin(pin)
    claim = ATOMIC_CLAIMS.get(type(pin_obj).__name__)
    if claim is not None:
        pin_obj.output_with_state = functools.partial(claim, pin_obj)
    if pwm:
        return PWMOutputDevice(pin, active_high=active_high, initial_value=0,
                               frequency=frequency, pin_factory=factory)
    return DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                               pin_factory=factory)


def _held_elsewhere(exc: BaseException) -> bool:
    # lgpio raises its own `lgpio.error("GPIO busy")` when another process holds the line.
    module = type(exc).__module__ or ""
    return module.split(".")[0] == "lgpio" or "busy" in str(exc).lower()


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
    except HardwareError:
        raise
    except Exception as exc:
        if _held_elsewhere(exc):
            raise error(
                f"The GPIO pin for {what} is held by another program: stop it (another "
                "`scanner worker` or `scanner run`, or a script using that pin), or give "
                "this part another pin in config/hal.toml."
            ) from exc
        raise


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


def prepare_lgpio_workdir(directory: Path) -> Path:
    """Point lgpio's notification pipes (`.lgd-nfy*`) at `directory` instead of the current
    directory (the checkout). lgpio reads LG_WD when it is first imported, so this runs
    before any pin is opened; a LG_WD set by systemd or the user wins."""
    if os.environ.get("LG_WD"):
        return Path(os.environ["LG_WD"])
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["LG_WD"] = str(directory)
    return directory
