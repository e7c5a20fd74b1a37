from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hal.settings import HalSettings, apply_env_overrides

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_when_mapping_is_empty() -> None:
    s = HalSettings.from_mapping({})
    assert s.driver == "mock"
    assert s.mock.capture_seconds == 0.2
    assert s.mock.seconds_per_rev == 8.0
    assert s.turntable.pins.endstop is None
    assert s.camera.lens_position is None


def test_nested_values_are_converted() -> None:
    s = HalSettings.from_mapping({
        "driver": "pi",
        "mock": {"resolution": [320, 240], "fault_file": "/tmp/f"},
        "camera": {"lens_position": 2.5, "resolution": "2028x1520"},
        "turntable": {"driver": "uln2003", "steps_per_rev": 2048, "microsteps": 2,
                      "pins": {"endstop": 6, "step": "GPIO5", "enable": ""}},
        "light": {"pwm": False},
    })
    assert s.driver == "pi"
    assert s.mock.resolution == (320, 240)
    assert s.camera.resolution == (2028, 1520)
    assert s.camera.lens_position == 2.5
    assert s.turntable.pins.endstop == 6
    assert s.turntable.pins.step == "GPIO5"
    assert s.turntable.pins.enable is None
    assert s.turntable.steps_per_platter_rev == 4096
    assert s.light.pwm is False


def test_unknown_driver_is_a_clear_sentence() -> None:
    with pytest.raises(ValueError) as info:
        HalSettings.from_mapping({"driver": "arduino"})
    message = str(info.value)
    assert "'arduino'" in message and "'mock'" in message and "'pi'" in message


def test_unknown_key_names_it_and_suggests() -> None:
    with pytest.raises(ValueError, match=r"hal\.turntable\.stpes_per_rev.*steps_per_rev"):
        HalSettings.from_mapping({"turntable": {"stpes_per_rev": 200}})


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"hal\.turntable\.microsteps"):
        HalSettings.from_mapping({"turntable": {"microsteps": "lots"}})
    with pytest.raises(ValueError, match=r"hal\.turntable\.max_speed_deg_s"):
        HalSettings.from_mapping({"turntable": {"max_speed_deg_s": -3}})


def test_uln2003_needs_full_or_half_steps() -> None:
    with pytest.raises(ValueError, match="microsteps"):
        HalSettings.from_mapping({"turntable": {"driver": "uln2003", "microsteps": 16}})


def test_lens_position_auto() -> None:
    assert HalSettings.from_mapping({"camera": {"lens_position": "auto"}}).camera.lens_position \
        is None


def test_settings_are_picklable_plain_data() -> None:
    s = HalSettings.from_mapping({"driver": "pi", "turntable": {"pins": {"endstop": 6}}})
    assert pickle.loads(pickle.dumps(s)) == s
    assert HalSettings.from_mapping(s.as_dict()) == s


def test_shipped_config_parses_and_matches_the_defaults() -> None:
    s = HalSettings.from_toml_file(ROOT / "config" / "hal.toml")
    assert s == HalSettings()


def test_env_overrides() -> None:
    table = apply_env_overrides(
        {"driver": "pi", "mock": {"capture_seconds": 1.0}},
        {"SCANNER_HAL": "mock", "SCANNER_MOCK_SECONDS_PER_REV": "0.5",
         "SCANNER_MOCK_FAULT_FILE": "/tmp/fault", "SCANNER_MOCK_RESOLUTION": "320x240"},
    )
    s = HalSettings.from_mapping(table)
    assert s.driver == "mock"
    assert s.mock.seconds_per_rev == 0.5
    assert s.mock.capture_seconds == 1.0
    assert s.mock.fault_file == "/tmp/fault"
    assert s.mock.resolution == (320, 240)
