"""Ring light on a GPIO pin: plain DC on/off, or dimmed by the Pi's hardware PWM.

A camera sensor reads its rows one after another (rolling shutter), so a light that flickers
faster than the exposure but not evenly shows as dark bands. Software PWM (what gpiozero
does with lgpio) jitters, so it is never used: without hardware PWM the light is simply
fully on (DC) whenever it is on, whatever brightness is asked. With `pwm = true` the light
must sit on GPIO 12, 13, 18 or 19 with the kernel's PWM overlay (docs/raspberry-pi.md) and
is driven through /sys/class/pwm at `pwm_frequency` (20 kHz: far shorter than any exposure).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from gpiozero.pins import Factory

from hal.errors import LightError
from hal.interfaces import Light
from hal.pi.gpio import gpio_errors, quiet_output
from hal.settings import LightSettings

log = logging.getLogger(__name__)

SYSFS_PWM = Path("/sys/class/pwm")
# Channels of the PWM pins: Pi 4 and earlier have 2 channels (GPIO 12/18 -> 0, 13/19 -> 1);
# the Pi 5's RP1 has 4 (GPIO 12, 13, 18, 19 -> 0, 1, 2, 3).
CHANNELS = {2: {12: 0, 18: 0, 13: 1, 19: 1}, 4: {12: 0, 13: 1, 18: 2, 19: 3}}


class SysfsPwm:
    """One hardware PWM channel through the kernel's sysfs interface."""

    def __init__(self, settings: LightSettings, root: Path = SYSFS_PWM) -> None:
        chip = root / f"pwmchip{settings.pwm_chip}"
        if not chip.exists():
            raise LightError(
                f"Hardware PWM is switched on for the light, but {chip} does not exist: add "
                "the PWM overlay to /boot/firmware/config.txt (see docs/raspberry-pi.md) and "
                "reboot, or set pwm = false in config/hal.toml.")
        channel = settings.pwm_channel
        if channel < 0:
            npwm = int((chip / "npwm").read_text().strip() or 2) if (chip / "npwm").exists() \
                else 2
            channel = CHANNELS.get(npwm, CHANNELS[2])[int(settings.pin)]
        self.dir = chip / f"pwm{channel}"
        if not self.dir.exists():
            (chip / "export").write_text(str(channel))
            deadline = time.monotonic() + 2.0  # udev makes the files writable shortly after
            while not (self.dir / "enable").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        self.invert = not settings.active_high
        self.period = round(1e9 / settings.pwm_frequency)
        self._write("enable", 0)
        self._write("period", self.period)
        self.set(0.0)
        self._write("enable", 1)

    def _write(self, name: str, value: int) -> None:
        (self.dir / name).write_text(str(int(value)))

    def set(self, level: float) -> None:
        duty = 1.0 - level if self.invert else level
        self._write("duty_cycle", round(self.period * min(1.0, max(0.0, duty))))

    def close(self) -> None:
        self.set(0.0)
        if not self.invert:
            self._write("enable", 0)


class PiLight(Light):
    """`on(b)`: with hardware PWM `b x brightness`; without, fully on (DC) for any b > 0."""

    def __init__(self, settings: LightSettings, pin_factory: Factory | None = None,
                 sysfs_root: Path = SYSFS_PWM) -> None:
        self.settings = settings
        self._level = 0.0
        self._warned = False
        self._pwm: SysfsPwm | None = None
        self._out: Any = None
        if settings.pwm:
            try:
                self._pwm = SysfsPwm(settings, sysfs_root)
            except OSError as exc:
                raise LightError(f"Could not drive the light's hardware PWM ({exc}): check "
                                 "the overlay and the permissions of /sys/class/pwm.") from exc
        else:
            with gpio_errors("the light", LightError):
                self._out = quiet_output(settings.pin, active_high=settings.active_high,
                                         pin_factory=pin_factory)
        self._closed = False

    def on(self, brightness: float = 1.0) -> None:
        if self._closed:
            raise LightError("The light was already closed; load the rig again.")
        level = min(1.0, max(0.0, float(brightness))) * min(1.0, self.settings.brightness)
        if self._pwm is not None:
            self._pwm.set(level)
        elif level > 0:
            if level < 1.0 and not self._warned:
                self._warned = True
                log.info("Dimming the light needs hardware PWM (docs/raspberry-pi.md); it is "
                         "fully on instead, which keeps photos free of bands")
            level = 1.0
            self._out.on()
        else:
            self._out.off()
        self._level = level

    def off(self) -> None:
        if not self._closed:
            if self._pwm is not None:
                self._pwm.set(0.0)
            else:
                self._out.off()
        self._level = 0.0

    @property
    def is_on(self) -> bool:
        return self._level > 0

    @property
    def level(self) -> float:
        """The duty cycle actually driven (0..1)."""
        return self._level

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.off()  # dark before the pin is released, so the light never stays on
        finally:
            self._closed = True
            if self._pwm is not None:
                self._pwm.close()
            else:
                self._out.close()

    def describe(self) -> dict[str, Any]:
        return {"type": "hardware-pwm" if self._pwm else "gpio-dc", "pin": self.settings.pin,
                "brightness": self.settings.brightness if self._pwm else 1.0}
