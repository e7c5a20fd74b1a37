"""Start button (gpiozero Button) and status LED.

A press counts when the button is released before `hold_time`; holding it that long fires
`when_held` instead, so one button can mean both "start" and "cancel".
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from gpiozero import LED, Button
from gpiozero.pins import Factory

from hal.interfaces import StartButton, check_status, fire
from hal.pi.gpio import close_all, gpio_errors
from hal.settings import ButtonSettings


class PiButton(StartButton):
    def __init__(
        self,
        settings: ButtonSettings,
        pin_factory: Factory | None = None,
        blink_seconds: float = 0.25,
    ) -> None:
        self.settings = settings
        self.when_pressed = None
        self.when_held = None
        self._blink = blink_seconds
        self._status = "idle"
        self._held = False
        self._lock = threading.Lock()
        self._led: LED | None = None
        with gpio_errors("the start button"):
            self._button = Button(
                settings.pin, pull_up=settings.pull_up,
                bounce_time=settings.bounce_time or None, hold_time=settings.hold_time,
                pin_factory=pin_factory,
            )
        try:
            if settings.led_pin is not None:
                with gpio_errors("the status LED"):
                    self._led = LED(settings.led_pin, active_high=settings.led_active_high,
                                    pin_factory=pin_factory)
        except Exception:
            close_all(self._button)
            raise
        # gpiozero calls these from its own threads.
        self._button.when_pressed = self._down
        self._button.when_held = self._hold
        self._button.when_released = self._up

    def _down(self) -> None:
        with self._lock:
            self._held = False

    def _hold(self) -> None:
        with self._lock:
            self._held = True
        fire(self.when_held, "button hold")

    def _up(self) -> None:
        with self._lock:
            was_held = self._held
            self._held = False
        if not was_held:
            fire(self.when_pressed, "button press")

    def set_status(self, state: str) -> None:
        self._status = check_status(state)
        if self._led is None:
            return
        if state == "idle":
            self._led.off()
        elif state == "busy":
            self._led.on()
        else:
            self._led.blink(on_time=self._blink, off_time=self._blink, background=True)

    @property
    def status(self) -> str:
        return self._status

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def close(self) -> None:
        if self._led is not None:
            with contextlib.suppress(Exception):
                self._led.off()  # leave the LED dark, not frozen mid-blink
        close_all(self._led, self._button)

    def describe(self) -> dict[str, Any]:
        return {"type": "gpio", "pin": self.settings.pin, "led_pin": self.settings.led_pin}
