"""Simulated start button with a status LED; `press()` and `hold()` play the user."""

from __future__ import annotations

from typing import Any

from hal.interfaces import StartButton, check_status, fire


class MockButton(StartButton):
    def __init__(self) -> None:
        self.when_pressed = None
        self.when_held = None
        self._status = "idle"
        self.closed = False

    def press(self) -> None:
        """A short press and release: runs `when_pressed`."""
        if not self.closed:
            fire(self.when_pressed, "button press")

    def hold(self) -> None:
        """A long press: runs `when_held` (and, like the real button, not `when_pressed`)."""
        if not self.closed:
            fire(self.when_held, "button hold")

    def set_status(self, state: str) -> None:
        self._status = check_status(state)

    @property
    def status(self) -> str:
        return self._status

    @property
    def led(self) -> str:
        """What the status LED is doing: "off", "on" or "blinking"."""
        return {"idle": "off", "busy": "on", "error": "blinking"}[self._status]

    @property
    def is_pressed(self) -> bool:
        return False  # press() and hold() are momentary: nothing keeps the mock button down

    def close(self) -> None:
        self._status = "idle"
        self.closed = True

    def describe(self) -> dict[str, Any]:
        return {"type": "mock"}
