"""Fixtures for the hardware-layer tests: gpiozero's own mock pins, recording sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin


def _use_factory(factory: MockFactory) -> Iterator[MockFactory]:
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """`Device.pin_factory = MockFactory()` for one test; `mock_factory.pin(n)` is pin n."""
    yield from _use_factory(MockFactory())


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    """Mock pins that support PWM (for the dimmable light)."""
    yield from _use_factory(MockFactory(pin_class=MockPWMPin))


class Sleeps:
    """Stands in for time.sleep: records each delay, runs an optional hook, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hook = None

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.hook is not None:
            self.hook()

    @property
    def total(self) -> float:
        return sum(self.delays)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
