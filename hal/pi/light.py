"""Ring light on a GPIO pin: a MOSFET/relay module switched on and off, or dimmed by PWM."""

from __future__ import annotations

from typing import Any

from gpiozero import DigitalOutputDevice, PWMOutputDevice
from gpiozero.pins import Factory

from hal.errors import LightError
from hal.interfaces import Light
from hal.pi.gpio import gpio_errors
from hal.settings import LightSettings


class PiLight(Light):
    """`on(b)` drives `b x brightness` (the configured full brightness).

    PWM at a low frequency shows up as dark bands in photos (the sensor reads rows one after
    another), so the default PWM frequency is 1 kHz and 1.0 brightness is plain DC.
    """

    def __init__(self, settings: LightSettings, pin_factory: Factory | None = None) -> None:
        self.settings = settings
        self._level = 0.0
        with gpio_errors("the light", LightError):
            if settings.pwm:
                self._out: DigitalOutputDevice | PWMOutputDevice = PWMOutputDevice(
                    settings.pin, active_high=settings.active_high, initial_value=0,
                    frequency=settings.pwm_frequency, pin_factory=pin_factory,
                )
            else:
                self._out = DigitalOutputDevice(
                    settings.pin, active_high=settings.active_high, initial_value=False,
                    pin_factory=pin_factory,
                )
        self._closed = False

    def on(self, brightness: float = 1.0) -> None:
        if self._closed:
            raise LightError("The light was already closed; load the rig again.")
        level = min(1.0, max(0.0, float(brightness))) * min(1.0, self.settings.brightness)
        if isinstance(self._out, PWMOutputDevice):
            self._out.value = level
        elif level > 0:
            self._out.on()
        else:
            self._out.off()
        self._level = level

    def off(self) -> None:
        if not self._closed:
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
            self._out.close()

    def describe(self) -> dict[str, Any]:
        return {"type": "gpio-pwm" if self.settings.pwm else "gpio", "pin": self.settings.pin,
                "brightness": self.settings.brightness}
