"""STEP/DIR/ENABLE turntable on gpiozero's MockFactory pins."""

from __future__ import annotations

import math

import pytest

from hal.errors import TurntableError
from hal.pi.ramp import step_delays
from hal.pi.stepped_turntable import ENABLE_SETTLE_S
from hal.pi.stepper import StepDirTurntable
from hal.settings import TurntablePins, TurntableSettings

STEP, DIR, ENABLE, ENDSTOP = 20, 21, 16, 6


def settings(**kw) -> TurntableSettings:
    pins = TurntablePins(endstop=kw.pop("endstop", None))
    base = dict(driver="step_dir", pins=pins, steps_per_rev=200, microsteps=16,
                gear_ratio=3.0, max_speed_deg_s=36000.0, accel_deg_s2=0.0)
    base.update(kw)
    return TurntableSettings(**base)


def pulses(pin) -> int:
    """Complete STEP pulses recorded since clear_states(), checking their shape."""
    states = [s.state for s in pin.states]
    assert states[0] is False
    assert len(states) % 2 == 1  # every pulse went high AND back low
    assert states[1::2] == [True] * (len(states) // 2)
    assert states[2::2] == [False] * (len(states) // 2)
    return len(states) // 2


@pytest.fixture
def rig(mock_factory, sleeps):
    def make(**kw) -> StepDirTurntable:
        t = StepDirTurntable(settings(**kw), sleep=sleeps, clock=sleeps.clock)
        for pin in (STEP, DIR, ENABLE):
            mock_factory.pin(pin).clear_states()
        return t

    return make


@pytest.mark.parametrize(
    ("gear", "microsteps", "angle", "expected"),
    [(1.0, 1, 90, 50), (1.0, 16, 90, 800), (3.0, 16, 90, 2400), (5.18, 16, 90, 4144),
     (3.0, 8, 1.8, 24)],
)
def test_exact_step_pulses_for_an_angle(rig, mock_factory, gear, microsteps, angle, expected):
    t = rig(gear_ratio=gear, microsteps=microsteps)
    t.rotate_by(angle)
    assert pulses(mock_factory.pin(STEP)) == expected
    assert t.position_steps == expected
    assert t.angle_deg == pytest.approx(angle)


def test_repeated_fractions_of_a_turn_add_up_to_exactly_one_turn(rig, mock_factory):
    t = rig()  # 9600 steps per platter turn: 360/7 is not a whole number of steps
    for _ in range(7):
        t.rotate_by(360 / 7)
    assert pulses(mock_factory.pin(STEP)) == 9600
    assert t.angle_deg == 0


@pytest.mark.parametrize(("reverse", "delta", "level"),
                         [(False, 30, True), (False, -30, False),
                          (True, 30, False), (True, -30, True)])
def test_dir_level_for_both_directions(rig, mock_factory, sleeps, reverse, delta, level):
    t = rig(reverse=reverse)
    dir_pin = mock_factory.pin(DIR)
    seen: list[bool] = []
    sleeps.hook = lambda: seen.append(dir_pin.state)
    t.rotate_by(delta)
    assert len(seen) == 1 + 800  # the enable settle, then 30 degrees = 800 steps
    assert set(seen[1:]) == {level}


def test_move_to_goes_the_short_way_round(rig, mock_factory):
    t = rig()
    t.move_to(350)  # 10 degrees backwards, not 350 forwards
    assert pulses(mock_factory.pin(STEP)) == round(10 / 360 * 9600)
    assert mock_factory.pin(DIR).state is False
    assert t.angle_deg == pytest.approx(350, abs=360 / 9600)  # within one step
    mock_factory.pin(STEP).clear_states()
    t.move_to(10)
    # Steps are counted to absolute targets (-267 -> +267), so rounding never accumulates.
    assert pulses(mock_factory.pin(STEP)) == 267 + 267
    assert mock_factory.pin(DIR).state is True


def test_enable_is_active_low_and_only_during_moves(rig, mock_factory, sleeps):
    t = rig()
    enable = mock_factory.pin(ENABLE)
    assert enable.state is True  # high = driver off while idle
    during: list[bool] = []
    sleeps.hook = lambda: during.append(enable.state)
    t.rotate_by(10)
    assert set(during) == {False}
    assert [s.state for s in enable.states] == [True, False, True]
    assert len(enable.states) == 3


def test_hold_torque_keeps_the_motor_enabled(rig, mock_factory):
    t = rig(hold_torque=True)
    enable = mock_factory.pin(ENABLE)
    t.rotate_by(10)
    t.rotate_by(10)
    assert [s.state for s in enable.states] == [True, False]
    assert t.is_enabled
    t.disable()
    assert enable.state is True
    assert len(enable.states) == 3


def test_speed_ramp_accelerates_cruises_and_decelerates(rig, sleeps):
    t = rig(max_speed_deg_s=90.0, accel_deg_s2=180.0)
    t.rotate_by(90)
    n = 2400
    per_deg = 9600 / 360
    expected = list(step_delays(n, 90 * per_deg, 180 * per_deg))
    assert sleeps.delays == pytest.approx([ENABLE_SETTLE_S] + expected)
    steps = sleeps.delays[1:]
    assert steps[0] == pytest.approx(1 / math.sqrt(2 * 180 * per_deg))
    assert min(steps) == pytest.approx(1 / (90 * per_deg))
    assert steps == steps[::-1]  # the same ramp down as up
    assert steps[: n // 2] == sorted(steps[: n // 2], reverse=True)


def test_endstop_homing_stops_on_the_pin(rig, mock_factory, sleeps):
    t = rig(endstop=ENDSTOP)
    t.rotate_by(45)
    step_pin, endstop = mock_factory.pin(STEP), mock_factory.pin(ENDSTOP)
    step_pin.clear_states()
    assert endstop.state is True  # pulled up, switch open

    def switch() -> None:
        if len(step_pin.states) == 2 * 137 + 1:  # after the 137th pulse the switch closes
            endstop.drive_low()

    sleeps.hook = switch
    t.home()
    assert pulses(step_pin) == 137
    assert mock_factory.pin(DIR).state is True  # home_direction = forward
    assert t.is_homed and t.angle_deg == 0 and t.position_steps == 0
    assert mock_factory.pin(ENABLE).state is True  # switched off again


def test_homing_backs_off_a_switch_that_is_already_pressed(rig, mock_factory, sleeps):
    t = rig(endstop=ENDSTOP)
    step_pin, dir_pin, endstop = (mock_factory.pin(p) for p in (STEP, DIR, ENDSTOP))
    endstop.drive_low()
    dirs: list[bool] = []

    def hook() -> None:
        n = len(step_pin.states) // 2
        if n > len(dirs):  # once per step (the switch is also read between steps)
            dirs.append(dir_pin.state)
        if n == 5:
            endstop.drive_high()
        if n == 5 + 8:
            endstop.drive_low()

    sleeps.hook = hook
    t.home()
    assert pulses(step_pin) == 13
    assert dirs == [False] * 5 + [True] * 8
    assert t.is_homed


def test_homing_gives_up_after_home_max_deg(rig, mock_factory):
    t = rig(endstop=ENDSTOP, home_max_deg=30.0)
    with pytest.raises(TurntableError, match="home switch"):
        t.home()
    assert pulses(mock_factory.pin(STEP)) == math.ceil(30 / 360 * 9600)
    assert not t.is_homed
    assert mock_factory.pin(ENABLE).state is True


def test_homing_without_endstop_returns_to_the_start(rig, mock_factory):
    t = rig()
    t.rotate_by(100)
    mock_factory.pin(STEP).clear_states()
    t.home()
    assert pulses(mock_factory.pin(STEP)) == round(100 / 360 * 9600)
    assert mock_factory.pin(DIR).state is False
    assert t.is_homed and t.position_steps == 0


def test_close_releases_the_pins(rig, mock_factory):
    t = rig(endstop=ENDSTOP)
    t.close()
    again = StepDirTurntable(settings(endstop=ENDSTOP))  # would raise GPIOPinInUse otherwise
    again.close()
    with pytest.raises(TurntableError, match="closed"):
        t.rotate_by(1)


def test_pin_conflict_is_explained(mock_factory):
    bad = settings()
    bad = TurntableSettings(**{**bad.__dict__, "pins": TurntablePins(step=20, dir=20)})
    with pytest.raises(TurntableError, match="already used"):
        StepDirTurntable(bad)
    StepDirTurntable(settings()).close()  # the half-built driver released pin 20
