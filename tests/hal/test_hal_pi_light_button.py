"""Ring light and start button on gpiozero's MockFactory pins."""

from __future__ import annotations

import threading
import time

import pytest

from hal.errors import LightError
from hal.pi.button import PiButton
from hal.pi.light import PiLight
from hal.settings import ButtonSettings, LightSettings

LIGHT, BUTTON, LED = 12, 26, 19


def wait_for(condition, timeout: float = 5.0) -> bool:
    """Poll a condition that a gpiozero background thread will make true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- light --------------------------------------------------------------------------------
def fake_sysfs(root, npwm: int = 2, channel: int = 0):
    chip = root / "pwmchip0"
    (chip / f"pwm{channel}").mkdir(parents=True)
    (chip / "npwm").write_text(str(npwm))
    (chip / "export").write_text("")
    for name in ("enable", "period", "duty_cycle"):
        (chip / f"pwm{channel}" / name).write_text("0")
    return chip / f"pwm{channel}"


def read(pwm, name: str) -> int:
    return int((pwm / name).read_text())


def test_hardware_pwm_light_drives_the_duty_cycle(tmp_path):
    pwm = fake_sysfs(tmp_path)
    light = PiLight(LightSettings(pwm=True, brightness=0.8, pwm_frequency=20000.0),
                    sysfs_root=tmp_path)
    assert read(pwm, "period") == 50000 and read(pwm, "enable") == 1
    light.on(0.5)
    assert read(pwm, "duty_cycle") == 20000  # 0.5 x 0.8 of 50 µs
    light.on()
    assert read(pwm, "duty_cycle") == 40000
    light.off()
    assert read(pwm, "duty_cycle") == 0 and not light.is_on
    light.close()
    assert read(pwm, "enable") == 0


def test_pi5_pwm_channels_follow_the_pin(tmp_path):
    pwm = fake_sysfs(tmp_path, npwm=4, channel=2)
    light = PiLight(LightSettings(pin=18, pwm=True), sysfs_root=tmp_path)
    light.on()
    assert read(pwm, "duty_cycle") == read(pwm, "period")
    light.close()


def test_hardware_pwm_needs_a_pwm_pin_and_the_overlay(tmp_path):
    with pytest.raises(ValueError, match="GPIO 12, 13, 18 or 19"):
        LightSettings(pin=17, pwm=True)
    with pytest.raises(LightError, match="overlay"):
        PiLight(LightSettings(pwm=True), sysfs_root=tmp_path)


def test_without_hardware_pwm_the_light_is_fully_on_for_captures(mock_factory):
    light = PiLight(LightSettings(pwm=False, brightness=0.5))
    pin = mock_factory.pin(LIGHT)
    light.on(0.3)  # no software PWM: it would band the photos
    assert pin.state is True and light.level == 1.0
    assert [s.state for s in pin.states][1:] == [True]  # one switch, no flicker
    light.close()


def test_on_off_light_active_low(mock_factory):
    light = PiLight(LightSettings(pwm=False, active_high=False))
    pin = mock_factory.pin(LIGHT)
    assert pin.state is True  # off = high for an active-low relay board
    light.on(0.3)
    assert pin.state is False
    light.off()
    assert pin.state is True
    light.close()


def test_light_goes_off_when_the_work_fails(mock_factory):
    light = PiLight(LightSettings(pwm=False))
    pin = mock_factory.pin(LIGHT)
    with pytest.raises(RuntimeError), light.lit():
        assert pin.state is True
        raise RuntimeError("capture failed")
    assert pin.state is False


def test_close_switches_off_before_releasing_the_pin(mock_factory):
    light = PiLight(LightSettings(pwm=False))
    pin = mock_factory.pin(LIGHT)
    light.on()
    pin.clear_states()
    light.close()
    assert [s.state for s in pin.states] == [True, False]
    light.close()  # twice is fine
    PiLight(LightSettings(pwm=False)).close()  # pin released


# -- button -------------------------------------------------------------------------------
def make_button(hold_time: float = 5.0) -> tuple[PiButton, list[str], threading.Event]:
    button = PiButton(ButtonSettings(hold_time=hold_time, bounce_time=0.05), blink_seconds=0.01)
    events: list[str] = []
    held = threading.Event()
    button.when_pressed = lambda: events.append("pressed")

    def on_held() -> None:
        events.append("held")
        held.set()

    button.when_held = on_held
    return button, events, held


def test_button_uses_pull_up_and_debounce(mock_factory):
    button, _, _ = make_button()
    pin = mock_factory.pin(BUTTON)
    assert pin.pull == "up"
    assert pin.bounce == 0.05
    button.close()


def test_short_press_fires_when_pressed_on_release(mock_factory):
    button, events, _ = make_button(hold_time=5.0)
    pin = mock_factory.pin(BUTTON)
    pin.drive_low()
    assert events == []  # nothing until the release: it might become a hold
    pin.drive_high()
    assert events == ["pressed"]
    button.close()


def test_hold_fires_when_held_and_not_pressed(mock_factory):
    button, events, held = make_button(hold_time=0.05)
    pin = mock_factory.pin(BUTTON)
    pin.drive_low()
    assert held.wait(5), "when_held was not called"
    pin.drive_high()
    assert events == ["held"]
    pin.drive_low()  # a later short press still counts
    pin.drive_high()
    assert events == ["held", "pressed"]
    button.close()


def test_failing_callback_does_not_break_the_button(mock_factory):
    button, _, _ = make_button()
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("bug in the daemon")

    button.when_pressed = broken
    pin = mock_factory.pin(BUTTON)
    for _ in range(2):
        pin.drive_low()
        pin.drive_high()
    assert calls == [1, 1]
    button.close()


def test_status_led(mock_factory):
    button, _, _ = make_button()
    led = mock_factory.pin(LED)
    button.set_status("busy")
    assert led.state is True
    button.set_status("idle")
    assert led.state is False
    led.clear_states()
    button.set_status("error")
    assert button.status == "error"
    assert wait_for(lambda: len(led.states) >= 5), "the LED does not blink"
    button.set_status("idle")
    assert led.state is False
    with pytest.raises(ValueError, match="idle, busy, error"):
        button.set_status("sleepy")
    button.close()
    PiButton(ButtonSettings()).close()  # pins were released


def test_is_pressed_follows_the_pin(mock_factory):
    button, _, _ = make_button()
    pin = mock_factory.pin(BUTTON)
    assert button.is_pressed is False
    pin.drive_low()  # pull-up: pressed connects the pin to ground
    assert button.is_pressed is True
    pin.drive_high()
    assert button.is_pressed is False
    button.close()
