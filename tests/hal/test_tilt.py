"""The camera tilt axis: settings and limits, the simulated arm the mock camera photographs
from, and the Pi drivers (STEP/DIR stepper, hobby servo) on gpiozero's MockFactory pins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hal.errors import HardwareStopped
from hal.mock.rig import build_arm, build_rig
from hal.pi.rig import build_tilt
from hal.pi.tilt_servo import ServoTilt
from hal.pi.tilt_stepper import StepDirTilt
from hal.settings import HalSettings
from hal.tilt import TiltError, TiltPositionStore
from hal.tilt_settings import TiltPins, TiltSettings

STEP, DIR, ENABLE, ENDSTOP, SERVO = 5, 6, 13, 24, 18
PER_DEG = 200 * 16 * 5 / 360  # driver steps a degree of arm


def hal_settings(data_dir: Path, **tilt) -> HalSettings:
    return HalSettings.from_mapping({
        "data_dir": str(data_dir),
        "mock": {"capture_seconds": 0, "seconds_per_rev": 0, "resolution": [160, 120]},
        "tilt": tilt,
    })


def test_limits_and_driver_are_checked_when_the_settings_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_elevation_deg' must be below"):
        hal_settings(tmp_path, min_elevation_deg=50, max_elevation_deg=10)
    with pytest.raises(ValueError, match="rest_elevation_deg"):
        hal_settings(tmp_path, rest_elevation_deg=80)
    with pytest.raises(ValueError, match="hal.tilt.driver"):
        hal_settings(tmp_path, driver="crane")


def test_the_mock_camera_photographs_from_the_arms_true_elevation(hal_data_dir: Path) -> None:
    settings = hal_settings(hal_data_dir, driver="step_dir", min_elevation_deg=5,
                            max_elevation_deg=50)
    with build_rig(settings) as rig:
        assert rig.tilt is not None
        assert rig.describe()["tilt"]["max_elevation_deg"] == 50
        rig.tilt.move_to(40)
        assert build_arm(settings).true_elevation() == 40  # the truth, in the data dir
        rig.camera.capture(hal_data_dir / "high.jpg")
        rig.tilt.move_to(10)
        rig.camera.capture(hal_data_dir / "low.jpg")
        scene = rig.camera.scene
        for name, elevation in (("high", 40), ("low", 10)):
            shot = np.asarray(Image.open(hal_data_dir / f"{name}.jpg"), np.float32)
            truth = scene.render(elevation, 0.0, (160, 120)).rgb.astype(np.float32)
            other = scene.render(50 - elevation, 0.0, (160, 120)).rgb.astype(np.float32)
            # JPEG noise is small next to the difference a wrong elevation makes.
            assert np.abs(shot - truth).mean() < 0.3 * np.abs(shot - other).mean()
        with pytest.raises(TiltError, match=r"cannot be tilted to 55°.*from 5° to 50°"):
            rig.tilt.move_to(55)
        assert build_arm(settings).true_elevation() == 10


def test_without_a_tilt_the_arm_is_set_by_hand(hal_data_dir: Path) -> None:
    settings = hal_settings(hal_data_dir)
    with build_rig(settings) as rig:
        assert rig.tilt is None
        assert rig.describe()["tilt"] == {"driver": "none"}
        assert rig.camera.elevation_deg == settings.tilt.rest_elevation_deg
        build_arm(settings).set_true_elevation(33)  # the operator's hand
        assert rig.camera.elevation_deg == 33


def test_a_stop_request_stops_the_mock_tilt_before_it_moves(hal_data_dir: Path) -> None:
    settings = hal_settings(hal_data_dir, driver="servo")
    with build_rig(settings) as rig:
        rig.set_stop_check(lambda: True)
        with pytest.raises(HardwareStopped):
            rig.tilt.move_to(30)
        assert build_arm(settings).true_elevation() == settings.tilt.rest_elevation_deg


def stepper_settings(**kw) -> TiltSettings:
    pins = TiltPins(step=STEP, dir=DIR, enable=ENABLE, endstop=kw.pop("endstop", None))
    base = dict(driver="step_dir", pins=pins, steps_per_rev=200, microsteps=16,
                gear_ratio=5.0, max_speed_deg_s=10.0, min_elevation_deg=0.0,
                max_elevation_deg=60.0, rest_elevation_deg=20.0)
    base.update(kw)
    return TiltSettings(**base)


def pulses(pin) -> int:
    states = [s.state for s in pin.states]
    assert states[1::2] == [True] * (len(states) // 2)  # each pulse went high, then low
    return len(states) // 2


def test_stepper_tilt_steps_exactly_and_keeps_its_elevation(
        mock_factory, sleeps, tmp_path: Path) -> None:
    store = TiltPositionStore(tmp_path / "tilt.json")
    tilt = StepDirTilt(stepper_settings(), store=store, sleep=sleeps)
    assert mock_factory.pin(ENABLE).state is True  # built: the driver stays off (active low)
    assert tilt.elevation_deg == pytest.approx(20.0, abs=0.5 / PER_DEG) and not tilt.is_enabled
    mock_factory.pin(STEP).clear_states()
    tilt.move_to(35.0)
    assert pulses(mock_factory.pin(STEP)) == round(35 * PER_DEG) - round(20 * PER_DEG)
    assert mock_factory.pin(DIR).state is True  # up
    assert mock_factory.pin(ENABLE).state is False  # active low: enabled, holding the arm
    assert tilt.elevation_deg == pytest.approx(35.0, abs=0.5 / PER_DEG)
    mock_factory.pin(STEP).clear_states()
    tilt.move_to(10.0)
    assert mock_factory.pin(DIR).state is False  # down
    assert pulses(mock_factory.pin(STEP)) == round(35 * PER_DEG) - round(10 * PER_DEG)
    tilt.close()
    assert mock_factory.pin(ENABLE).state is True  # released
    again = StepDirTilt(stepper_settings(), store=store, sleep=sleeps)
    assert again.elevation_deg == pytest.approx(10.0, abs=0.5 / PER_DEG)  # from the file
    with pytest.raises(TiltError, match="cannot be tilted to -5°"):
        again.move_to(-5)
    again.close()


def test_stepper_tilt_homes_on_its_switch(mock_factory, sleeps) -> None:
    tilt = StepDirTilt(stepper_settings(endstop=ENDSTOP, min_elevation_deg=2.0), sleep=sleeps)
    switch = mock_factory.pin(ENDSTOP)
    switch.drive_high()  # active low: not pressed
    step = mock_factory.pin(STEP)
    step.clear_states()

    def arm_reaches_the_switch() -> None:  # 300 steps down from where it started
        if len(step.states) // 2 >= 300:
            switch.drive_low()

    sleeps.hook = arm_reaches_the_switch
    assert not tilt.position_known
    tilt.home()
    assert tilt.position_known and tilt.elevation_deg == pytest.approx(2.0, abs=0.5 / PER_DEG)
    assert pulses(step) == 300
    tilt.close()


def test_stepper_tilt_that_never_finds_its_switch_says_so(mock_factory, sleeps) -> None:
    tilt = StepDirTilt(stepper_settings(endstop=ENDSTOP, max_speed_deg_s=1e6), sleep=sleeps)
    mock_factory.pin(ENDSTOP).drive_high()
    with pytest.raises(TiltError, match="did not reach its home switch"):
        tilt.home()
    tilt.close()


def servo_settings(**kw) -> TiltSettings:
    base = dict(driver="servo", pins=TiltPins(servo=SERVO), servo_min_angle=-90.0,
                servo_max_angle=90.0, servo_min_pulse_s=0.0005, servo_max_pulse_s=0.0025,
                servo_offset_deg=-30.0, servo_direction=1, settle_seconds=0.4,
                min_elevation_deg=0.0, max_elevation_deg=60.0)
    base.update(kw)
    return TiltSettings(**base)


def test_servo_tilt_sets_the_pulse_width_for_the_elevation(pwm_factory, sleeps) -> None:
    tilt = ServoTilt(servo_settings(), sleep=sleeps)
    pin = pwm_factory.pin(SERVO)
    assert not tilt.is_enabled  # no pulses until told where to go
    tilt.move_to(45.0)
    # servo angle 15 of -90..90: pulse 0.5 ms + (105 / 180) x 2 ms, every 20 ms.
    assert pin.frequency == pytest.approx(50)
    assert pin.state == pytest.approx((0.0005 + 105 / 180 * 0.002) / 0.02)
    assert sleeps.delays[-1] == 0.4  # waits for the arm: a servo says nothing back
    assert tilt.elevation_deg == 45.0 and tilt.position_known
    with pytest.raises(TiltError, match="cannot be tilted to 61°"):
        tilt.move_to(61)
    tilt.disable()
    assert not tilt.is_enabled and pin.state == 0
    tilt.close()


def test_servo_limits_must_fit_the_servos_travel(pwm_factory) -> None:
    with pytest.raises(TiltError, match="servo at 150°"):
        ServoTilt(servo_settings(servo_offset_deg=90.0))


def test_the_pi_rig_builds_the_configured_tilt(pwm_factory, tmp_path: Path) -> None:
    settings = HalSettings.from_mapping({"data_dir": str(tmp_path), "driver": "pi",
                                         "tilt": {"driver": "servo", "pins": {"servo": 13},
                                                  "servo_offset_deg": -30}})
    assert isinstance(build_tilt(settings, pwm_factory), ServoTilt)
    none = HalSettings.from_mapping({"data_dir": str(tmp_path)})
    assert build_tilt(none, pwm_factory) is None
