"""Loading rigs by configuration, closing them safely, and import hygiene."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero import DigitalOutputDevice

import hal
from hal import HalSettings, HardwareError, Rig, load_button, load_rig, rig_is_mock
from hal.mock.button import MockButton
from hal.mock.camera import MockCamera
from hal.mock.light import MockLight
from hal.mock.turntable import MockTurntable
from hal.pi.button import PiButton
from hal.pi.rig import build_rig
from tests.hal.picamera2_standin import Picamera2Factory

ROOT = Path(__file__).resolve().parents[2]
FAST_MOCK = {"capture_seconds": 0, "seconds_per_rev": 0, "resolution": [320, 240]}


def test_mock_rig_describes_itself_as_json(tmp_path: Path) -> None:
    settings = HalSettings.from_mapping({"mock": FAST_MOCK})
    assert rig_is_mock(settings)
    with load_rig(settings) as rig:
        assert isinstance(rig, Rig) and rig.is_mock
        description = json.loads(json.dumps(rig.describe()))
        assert description["driver"] == "mock"
        assert description["camera"]["resolution"] == [320, 240]
        with rig.hold_position():
            rig.turntable.move_to(120)
            info = rig.camera.capture(tmp_path / "a.jpg",
                                      exif={"datetime": "2024-01-01T00:00:00"})
        assert info.settings["angle_deg"] == 120  # the camera sees the mock platter
        assert not rig.turntable.is_enabled  # released at the end of the block
        rig.light.on()
    assert not rig.light.is_on and not rig.turntable.is_enabled and not rig.camera.is_open


def test_close_keeps_going_when_one_device_fails() -> None:
    class BrokenLight(MockLight):
        def off(self) -> None:
            raise RuntimeError("relay stuck")

    turntable = MockTurntable(seconds_per_rev=0, hold=True)
    camera = MockCamera(resolution=(32, 32), capture_seconds=0)
    camera.open()
    turntable.rotate_by(10)
    rig = Rig("mock", camera=camera, turntable=turntable, light=BrokenLight())
    rig.close()
    assert not turntable.is_enabled
    assert not camera.is_open
    assert len(rig.close_errors) == 2  # light.off() and light.close() (which calls off)
    assert "relay stuck" in rig.close_errors[0]


def test_unknown_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="'mock'.*'pi'"):
        load_rig(HalSettings(driver="arduino"))


def test_mock_button() -> None:
    button = load_button(HalSettings())
    assert isinstance(button, MockButton)
    pressed: list[str] = []
    button.when_pressed = lambda: pressed.append("p")
    button.when_held = lambda: pressed.append("h")
    button.press()
    button.hold()
    assert pressed == ["p", "h"]
    button.set_status("error")
    assert button.led == "blinking"


def test_pi_rig_on_mock_pins(pwm_factory, tmp_path: Path) -> None:
    settings = HalSettings.from_mapping({
        "driver": "pi",
        "camera": {"resolution": [640, 480], "settle_frames": 0},
        "turntable": {"max_speed_deg_s": 36000, "accel_deg_s2": 0, "hold_torque": True},
    })
    light, enable = pwm_factory.pin(12), pwm_factory.pin(16)
    rig = build_rig(settings, picamera2_factory=Picamera2Factory())
    with rig:
        assert rig.describe()["turntable"]["steps_per_platter_rev"] == 3200
        assert rig.describe()["camera"]["model"] == "not opened yet"
        rig.light.on()
        assert light.state == 1
        rig.turntable.rotate_by(1.8)
        assert enable.state == 0  # held: driver enabled (active low)
        rig.camera.capture(tmp_path / "x.jpg")
        assert rig.describe()["camera"]["model"] == "imx708"
        light.clear_states()
        enable.clear_states()
    # Switched off while still driven, before the pins were released.
    assert [s.state for s in light.states][:2] == [1, 0]
    assert [s.state for s in enable.states][:2] == [0, 1]
    assert rig.close_errors == []
    load_rig(settings).close()  # every pin was released


def test_pi_rig_pin_clash_releases_what_was_built(mock_factory) -> None:
    settings = HalSettings.from_mapping({"driver": "pi", "light": {"pin": 20}})  # = STEP
    with pytest.raises(HardwareError, match="GPIO20 is set for both the stepper STEP and the "
                                            "light"):
        load_rig(settings)
    DigitalOutputDevice(20).close()  # the turntable gave pin 20 back


def test_pi_button_loads_by_configuration(mock_factory) -> None:
    button = load_button(HalSettings(driver="pi"))
    assert isinstance(button, PiButton)
    button.close()


def test_loading_the_mock_rig_imports_no_hardware_library() -> None:
    code = (
        "import sys\n"
        "from hal import HalSettings, load_rig\n"
        "import hal.check\n"
        "load_rig(HalSettings()).close()\n"
        "assert 'gpiozero' not in sys.modules, 'mock rig imported gpiozero'\n"
        "import hal.pi.camera, hal.pi.rig\n"
        "assert 'picamera2' not in sys.modules, 'picamera2 imported at import time'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_hal_imports_nothing_from_the_app() -> None:
    forbidden = ("scanner_app", "flask", "picamera2")
    for path in Path(hal.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "picamera2":
                    # only inside a function of the Pi camera driver (lazy import)
                    assert path.name == "camera.py" and path.parent.name == "pi", path
                    assert node.col_offset > 0, f"{path}: picamera2 imported at module level"
                else:
                    assert top not in forbidden, f"{path} imports {name}"
