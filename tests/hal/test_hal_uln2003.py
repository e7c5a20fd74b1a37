"""28BYJ-48 on a ULN2003 board, on gpiozero's MockFactory pins."""

from __future__ import annotations

import pytest

from hal.pi.uln2003 import FULL_STEP, HALF_STEP, Uln2003Turntable
from hal.settings import TurntablePins, TurntableSettings

COILS = (17, 18, 27, 22)


def settings(**kw) -> TurntableSettings:
    base = dict(driver="uln2003", pins=TurntablePins(), steps_per_rev=2048, microsteps=2,
                max_speed_deg_s=3600.0, accel_deg_s2=0.0)
    base.update(kw)
    return TurntableSettings(**base)


@pytest.fixture
def coils(mock_factory):
    return [mock_factory.pin(p) for p in COILS]


def record_phases(sleeps, coils) -> list[tuple[int, ...]]:
    """Coil pattern at every pause: after enabling, then after each step."""
    seen: list[tuple[int, ...]] = []
    sleeps.hook = lambda: seen.append(tuple(int(c.state) for c in coils))
    return seen


def test_half_step_sequence_forward(sleeps, coils):
    t = Uln2003Turntable(settings(), sleep=sleeps, clock=sleeps.clock)
    seen = record_phases(sleeps, coils)
    t.rotate_by(10 * 360 / 4096)  # ten half steps
    assert seen == [HALF_STEP[0]] + [HALF_STEP[(i + 1) % 8] for i in range(10)]
    assert len(seen) == 11
    assert all(c.state is False for c in coils)  # all coils off when idle


def test_full_step_sequence_backward(sleeps, coils):
    t = Uln2003Turntable(settings(microsteps=1), sleep=sleeps, clock=sleeps.clock)
    seen = record_phases(sleeps, coils)
    t.rotate_by(-6 * 360 / 2048)
    assert seen == [FULL_STEP[0]] + [FULL_STEP[-(i + 1) % 4] for i in range(6)]
    assert all(c.state is False for c in coils)


def test_quarter_turn_of_a_28byj48(sleeps, coils):
    t = Uln2003Turntable(settings(), sleep=sleeps, clock=sleeps.clock)
    for coil in coils:
        coil.clear_states()
    t.rotate_by(90)
    assert t.position_steps == 1024  # 4096 half steps per turn
    # IN1 is on in 3 consecutive of the 8 half-step patterns, so it goes off and on once
    # per 8 steps: initial off, on when enabled, 128 off/on pairs, off when disabled.
    in1 = [s.state for s in coils[0].states]
    assert in1 == [False, True] + [False, True] * 128 + [False]


def test_sequence_resumes_where_it_stopped(sleeps, coils):
    t = Uln2003Turntable(settings(), sleep=sleeps, clock=sleeps.clock)
    t.rotate_by(3 * 360 / 4096)
    seen = record_phases(sleeps, coils)
    t.rotate_by(2 * 360 / 4096)
    assert seen == [HALF_STEP[3], HALF_STEP[4], HALF_STEP[5]]


def test_hold_keeps_the_coils_energised(sleeps, coils):
    t = Uln2003Turntable(settings(hold_torque=True), sleep=sleeps, clock=sleeps.clock)
    t.rotate_by(5 * 360 / 4096)
    assert tuple(int(c.state) for c in coils) == HALF_STEP[5]
    t.disable()
    assert all(c.state is False for c in coils)
