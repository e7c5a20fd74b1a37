"""Issue 11 items 1-4 on MockFactory pins: a position that survives jobs and power cuts,
a motor held for a whole scan, steps on an absolute clock with a stop request, a debounced
home switch, and the 28BYJ-48's real gear ratio."""

from __future__ import annotations

import json
import math

import pytest

from hal import HalSettings, HardwareStopped, load_rig, set_zero_here
from hal.pi.ramp import step_delays
from hal.pi.stepped_turntable import ENABLE_SETTLE_S
from hal.pi.stepper import StepDirTurntable
from hal.pi.uln2003 import Uln2003Turntable
from hal.position import PositionStore
from hal.settings import TurntablePins, TurntableSettings

STEP, ENABLE, ENDSTOP = 20, 16, 6
SPR = 9600  # 200 steps x 16 microsteps x gear 3


def settings(**kw) -> TurntableSettings:
    pins = TurntablePins(endstop=kw.pop("endstop", None), endstop_samples=kw.pop("samples", 3))
    base = dict(driver="step_dir", pins=pins, microsteps=16, gear_ratio=3.0,
                max_speed_deg_s=36000.0, accel_deg_s2=0.0)
    base.update(kw)
    return TurntableSettings(**base)


@pytest.fixture
def build(mock_factory, sleeps, tmp_path):
    store = PositionStore(tmp_path / "rig-position.json")

    def make(**kw) -> StepDirTurntable:
        return StepDirTurntable(settings(**kw), sleep=sleeps, clock=sleeps.clock, store=store)

    make.store = store
    return make


def test_position_survives_a_new_turntable_object(build, mock_factory):
    first = build()
    first.move_to(90)
    first.close()  # the job ends; the next job builds a new rig
    second = build()
    assert second.position_steps == 2400 and second.angle_deg == 90
    mock_factory.pin(STEP).clear_states()
    second.move_to(0)  # back the short way: 2400 steps, not nothing
    assert len(mock_factory.pin(STEP).states) // 2 == 2400


def test_the_file_says_moving_during_a_move_and_a_cut_leaves_the_position_unknown(
        build, sleeps):
    t = build()
    seen: list[dict] = []
    sleeps.hook = lambda: seen.append(json.loads(build.store.path.read_text()))
    t.rotate_by(10)
    assert seen[-1]["moving_to"] == round(10 / 360 * SPR)  # written before the first step
    assert json.loads(build.store.path.read_text())["moving_to"] is None
    assert json.loads(build.store.path.read_text())["steps"] == 267
    # A power cut mid-move leaves the "moving" record behind:
    t.close()
    build.store.path.write_text(json.dumps(seen[5]))
    after = build()
    assert not after.position_known
    assert "cut short" in after.position_note
    assert after.describe()["position_known"] is False


def test_without_an_endstop_the_position_is_assumed_and_says_so(build):
    t = build()
    t.home()
    assert t.is_homed and not t.position_known
    assert "assumed" in t.describe()["position_note"]


def test_with_an_endstop_homing_makes_it_known(build, mock_factory, sleeps):
    t = build(endstop=ENDSTOP)
    step_pin = mock_factory.pin(STEP)
    step_pin.clear_states()

    def close_after_ten_steps() -> None:
        if len(step_pin.states) // 2 >= 10:
            mock_factory.pin(ENDSTOP).drive_low()

    sleeps.hook = close_after_ten_steps
    t.home()
    assert t.position_known and "known" in t.position_note


def test_set_zero_here_is_saved_and_used_by_the_next_rig(hal_data_dir, mock_factory):
    hal = HalSettings.from_mapping({"driver": "pi", "turntable": {"gear_ratio": 3.0},
                                    "light": {"pwm": False}})
    with load_rig(hal) as rig:
        rig.turntable.rotate_by(45)
    sentence = set_zero_here(hal)
    assert sentence.startswith("The platter's current position is now 0° (it was counted as 45.0°)")
    with load_rig(hal) as rig:
        assert rig.turntable.angle_deg == 0
        assert "0° you set by hand" in rig.turntable.position_note


def test_a_scan_holds_the_driver_enabled_from_first_move_to_end(build, mock_factory, sleeps):
    t = build()
    enable = mock_factory.pin(ENABLE)
    enable.clear_states()
    with t.hold_position():
        assert enable.state is False  # energised on entry: frame 0 needs no move
        for i in range(12):
            t.move_to(i * 30)
            assert enable.state is False  # active low: still enabled between frames
    assert enable.state is True
    assert [s.state for s in enable.states] == [True, False, True]  # on once, off once


def test_steps_follow_an_absolute_clock_and_catch_up_a_late_step(build, sleeps):
    t = build(max_speed_deg_s=90.0, accel_deg_s2=180.0)
    per_deg = SPR / 360
    expected = list(step_delays(240, 90 * per_deg, 180 * per_deg))
    started = sleeps.clock()
    calls = 0

    def late_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 50:
            sleeps.lag(0.003)  # Python lost 3 ms after the 49th step

    sleeps.hook = late_once
    t.rotate_by(9)
    assert sleeps.clock() - started == pytest.approx(ENABLE_SETTLE_S + sum(expected))
    assert sleeps.delays[50] < expected[49]  # the next wait was shortened to catch up


def test_a_stop_request_ends_the_move_between_steps_and_saves(build, mock_factory, sleeps):
    t = build()
    steps = mock_factory.pin(STEP)
    steps.clear_states()
    t.stop_check = lambda: len(steps.states) // 2 >= 100
    with pytest.raises(HardwareStopped, match="stopped"):
        t.rotate_by(90)
    assert t.position_steps == 100
    saved = json.loads(build.store.path.read_text())
    assert saved["steps"] == 100 and saved["moving_to"] is None
    assert not t.is_enabled  # not held: released after the stop
    t.stop_check = None
    t.move_to(90)  # continues from where it really stands
    assert t.position_steps == 2400


def test_a_stop_request_also_ends_homing(build, mock_factory):
    t = build(endstop=ENDSTOP)
    t.stop_check = lambda: len(mock_factory.pin(STEP).states) > 40
    with pytest.raises(HardwareStopped):
        t.home()
    assert not t.is_homed


def test_one_noisy_read_of_the_switch_is_not_home(build, mock_factory, sleeps):
    t = build(endstop=ENDSTOP, samples=3)
    step_pin, endstop = mock_factory.pin(STEP), mock_factory.pin(ENDSTOP)
    step_pin.clear_states()
    spiked = []

    def hook() -> None:
        n = len(step_pin.states) // 2
        if n == 20 and not spiked:
            spiked.append(n)
            endstop.drive_low()  # a spike: active for one read only
        elif spiked and n == 20:
            endstop.drive_high()
        elif n == 60:
            endstop.drive_low()  # the real switch

    sleeps.hook = hook
    t.home()
    assert len(step_pin.states) // 2 == 60  # went on past the spike, stopped on the switch


def test_28byj48_defaults_to_its_real_gear_ratio():
    s = TurntableSettings(driver="uln2003", microsteps=1)
    assert s.steps_per_rev == 32 and s.gear_ratio == 63.68395
    assert s.steps_per_platter_rev == pytest.approx(2037.886, abs=1e-3)
    assert HalSettings.from_mapping(
        {"turntable": {"driver": "uln2003", "microsteps": 2}}
    ).turntable.steps_per_platter_rev == pytest.approx(4075.77, abs=1e-2)


def test_28byj48_ten_turns_do_not_drift(mock_factory, sleeps):
    t = Uln2003Turntable(TurntableSettings(driver="uln2003", microsteps=1,
                                           max_speed_deg_s=3600.0, accel_deg_s2=0.0),
                         sleep=sleeps, clock=sleeps.clock)
    for _ in range(10):
        t.rotate_by(360)
    assert t.position_steps == round(10 * 2037.886)  # 20379, where 2048/turn gives 20480
    assert t.angle_deg == pytest.approx(0, abs=360 / 2037.886)
    assert math.isclose(t.describe()["steps_per_platter_rev"], 2037.886, abs_tol=1e-3)


@pytest.mark.parametrize("stop_after", range(12))
def test_pi_scan_resumed_after_any_frame_steps_to_every_true_angle(
        mock_factory, sleeps, tmp_path, stop_after):
    """The physical truth on the Pi path is the STEP pulses the motor got, signed by DIR:
    summed across jobs (each with a new turntable), they must put every frame where the
    belief says."""
    store = PositionStore(tmp_path / "rig-position.json")
    step_pin, dir_pin = mock_factory.pin(STEP), mock_factory.pin(21)
    truth = {"steps": 0}

    def count_move() -> None:
        pulses = len(step_pin.states) // 2
        truth["steps"] += pulses if dir_pin.state else -pulses
        step_pin.clear_states()

    done: set[int] = set()
    for job_stop in (stop_after, None):
        t = StepDirTurntable(settings(), sleep=sleeps, clock=sleeps.clock, store=store)
        step_pin.clear_states()
        t.home()  # no switch: back to the saved 0
        count_move()
        with t.hold_position():
            for i in range(12):
                if i in done:
                    continue
                t.move_to(i * 30)
                count_move()
                assert (truth["steps"] * 360 / SPR) % 360 == pytest.approx(i * 30), i
                assert t.angle_deg == pytest.approx(i * 30)
                done.add(i)
                if job_stop == i:
                    break
        t.close()
    assert done == set(range(12))
