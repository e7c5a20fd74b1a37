"""Issue 11 item 13 (GPIO) on MockFactory pins, and a hal-level scan whose camera never
answers: interrupted within the timeout, motor driver disabled, light off."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from hal import CameraTimeout, HalSettings, HardwareError, load_rig
from hal.errors import TurntableError
from hal.pi import gpio
from hal.pi.rig import build_rig
from hal.pi.safety import pi_safe_off
from hal.pi.stepper import StepDirTurntable
from hal.pins import pin_clashes
from hal.settings import TurntableSettings
from tests.hal.picamera2_standin import Picamera2Factory

ENABLE, LIGHT = 16, 12


class LgpioLikePin(MockPin):
    """Like gpiozero's LGPIOPin: making the line an output claims it LOW first."""

    def _set_function(self, value):
        super()._set_function(value)
        if value == "output":
            self._change_state(False)


def claim_at_level(pin, state) -> None:  # what lgpio.gpio_claim_output(h, n, level) does
    pin._function = "output"
    pin._change_state(bool(state))


@pytest.fixture
def lgpio_like():
    from gpiozero import Device

    previous, factory = Device.pin_factory, MockFactory(pin_class=LgpioLikePin)
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def pulled_up(factory, number: int):
    pin = factory.pin(number)
    pin.drive_high()  # the 10 kΩ pull-up on an active-low ENABLE
    pin.clear_states()
    return pin


def test_enable_is_never_driven_active_while_the_turntable_is_built(mock_factory):
    enable = pulled_up(mock_factory, ENABLE)
    t = StepDirTurntable(TurntableSettings())
    assert {s.state for s in enable.states} == {True}  # never low = never enabled
    t.close()


def test_gpiozero_alone_would_blip_enable_on_with_lgpio(lgpio_like):
    enable = pulled_up(lgpio_like, ENABLE)
    DigitalOutputDevice(ENABLE, active_high=False, initial_value=False).close()
    assert False in [s.state for s in enable.states]  # the blip this test guards against


def test_enable_claimed_at_its_level_never_blips(lgpio_like, monkeypatch):
    monkeypatch.setitem(gpio.ATOMIC_CLAIMS, "LgpioLikePin", claim_at_level)
    enable = pulled_up(lgpio_like, ENABLE)
    t = StepDirTurntable(TurntableSettings())
    assert {s.state for s in enable.states} == {True}
    t.close()


def test_a_pin_held_by_another_program_is_one_sentence(monkeypatch):
    from gpiozero import Device

    class error(Exception):  # noqa: N801 - named like lgpio's own exception class
        pass

    error.__module__ = "lgpio"

    class BusyPin(MockPin):
        def _set_function(self, value):
            if value == "output":
                raise error("GPIO busy")
            super()._set_function(value)

    monkeypatch.setattr(Device, "pin_factory", MockFactory(pin_class=BusyPin))
    with pytest.raises(TurntableError) as info:
        StepDirTurntable(TurntableSettings())
    message = str(info.value)
    assert "held by another program" in message and "\n" not in message


def test_rig_and_button_pins_are_checked_against_each_other(mock_factory):
    assert pin_clashes(HalSettings()) == []
    clash = HalSettings.from_mapping({"driver": "pi", "button": {"led_pin": "GPIO20"}})
    assert pin_clashes(clash) == ["GPIO20 is set for both the stepper STEP and the status "
                                  "LED: give each its own pin in config/hal.toml."]
    with pytest.raises(HardwareError, match="GPIO20 is set for both"):
        load_rig(clash)


def test_lgpio_files_go_to_a_runtime_dir_not_the_checkout(mock_factory, hal_data_dir):
    assert "LG_WD" not in os.environ
    build_rig(HalSettings(driver="pi", data_dir=str(hal_data_dir)),
              picamera2_factory=Picamera2Factory()).close()
    assert os.environ["LG_WD"] == str(hal_data_dir / "run")
    assert (hal_data_dir / "run").is_dir()


def test_safe_off_drives_the_driver_and_light_off(mock_factory, hal_data_dir):
    enable, light = mock_factory.pin(ENABLE), mock_factory.pin(LIGHT)
    assert enable.state is False  # what a killed worker can leave: driver enabled
    done = pi_safe_off(HalSettings(driver="pi", data_dir=str(hal_data_dir)))
    assert done == ["Switched the light off.", "Switched the motor driver off."]
    assert True in [s.state for s in enable.states]  # driven inactive (high)
    assert light.state is False


def test_a_camera_that_never_answers_interrupts_the_scan_with_motor_and_light_off(
        mock_factory, hal_data_dir, tmp_path: Path):
    settings = HalSettings.from_mapping({
        "driver": "pi", "data_dir": str(hal_data_dir),
        "camera": {"capture_timeout_s": 0.2, "autofocus_timeout_s": 0.2, "settle_frames": 1},
        "turntable": {"max_speed_deg_s": 36000, "accel_deg_s2": 0},
    })
    camera = Picamera2Factory("imx708")
    rig = build_rig(settings, picamera2_factory=camera)
    enable, light = mock_factory.pin(ENABLE), mock_factory.pin(LIGHT)
    started = time.monotonic()
    with pytest.raises(CameraTimeout):
        try:  # the scan job's shape: home, hold, light, lock, frames; close whatever happens
            rig.turntable.home()
            with rig.hold_position():
                rig.light.on()
                rig.camera.lock_exposure()
                camera.hang = True  # the ribbon cable comes loose
                for i in range(12):
                    rig.turntable.move_to(i * 30)
                    assert enable.state is False  # held during the scan
                    rig.camera.capture(tmp_path / f"{i}.jpg")
        finally:
            rig.close()
    assert time.monotonic() - started < 2.0
    assert enable.state is True and light.state is False and not rig.camera.is_open
