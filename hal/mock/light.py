"""Simulated ring light: remembers its state and every change."""

from __future__ import annotations

from typing import Any

from hal.interfaces import Light


class MockLight(Light):
    def __init__(self) -> None:
        self.brightness = 0.0
        self.history: list[float] = []  # brightness after each change, for tests

    def on(self, brightness: float = 1.0) -> None:
        self._set(min(1.0, max(0.0, float(brightness))))

    def off(self) -> None:
        self._set(0.0)

    def _set(self, value: float) -> None:
        if value != self.brightness:
            self.history.append(value)
        self.brightness = value

    @property
    def is_on(self) -> bool:
        return self.brightness > 0

    def close(self) -> None:
        self.off()

    def describe(self) -> dict[str, Any]:
        return {"type": "mock"}
