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
    """Stands in for time.sleep: records each delay, runs an optional hook, never waits.

    `clock()` is the matching time.monotonic: it advances by every sleep (and by `lag()`,
    which plays time lost to Python between two steps).
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hook = None
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds
        if self.hook is not None:
            self.hook()

    def clock(self) -> float:
        return self.now

    def lag(self, seconds: float) -> None:
        self.now += seconds

    @property
    def total(self) -> float:
        return sum(self.delays)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(autouse=True)
def hal_data_dir(tmp_path_factory, monkeypatch):
    """Every hal test gets its own data dir: rig positions never land in the real home."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("SCANNER_DATA_DIR", str(path))
    monkeypatch.delenv("LG_WD", raising=False)
    return path
