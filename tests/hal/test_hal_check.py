"""`scanner hal check`: hal.check.run_hal_check and its click/Flask wrapper."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

from flask import Flask

from hal import HalSettings
from hal.check import run_hal_check
from scanner_app.cli.hal import hal_cli

FAST = {"capture_seconds": 0.01, "seconds_per_rev": 0.04, "resolution": [320, 240]}


def check(settings: HalSettings) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = run_hal_check(settings, out=lines.append)
    return ok, lines


def test_everything_works_on_the_mock_rig() -> None:
    ok, lines = check(HalSettings.from_mapping({"mock": FAST}))
    assert ok
    assert "simulated" in lines[0]
    steps = lines[1:-1]
    assert len(steps) == 7 and all(line.startswith("✔ ") for line in steps)
    assert steps[0].startswith("✔ Turntable homed (")
    assert "now at 90.0°" in steps[1]
    assert "320×240" in steps[4]
    assert steps[6].startswith("✔ Button and status LED (")
    assert lines[-1] == "All 7 checks passed: the scanner hardware is ready."


def test_unplugged_camera_is_reported_in_plain_words(tmp_path: Path) -> None:
    fault = tmp_path / "fault"
    fault.write_text("unplugged")
    ok, lines = check(HalSettings.from_mapping({"mock": {**FAST, "fault_file": str(fault)}}))
    assert not ok
    assert "✘ Camera took a photo: The camera is not answering: check the ribbon cable" \
        in "\n".join(lines)
    assert sum(line.startswith("✔") for line in lines) == 6
    assert lines[-1].startswith("1 of 7 checks failed (Camera took a photo)")


def test_pi_rig_without_picamera2(pwm_factory, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    settings = HalSettings.from_mapping(
        {"driver": "pi", "turntable": {"max_speed_deg_s": 36000, "accel_deg_s2": 0}})
    ok, lines = check(settings)
    text = "\n".join(lines)
    assert not ok
    assert "✔ Turntable turned a quarter turn" in text
    assert "✔ Light switched on" in text and "look: is the ring light on?" in text
    assert "✘ Exposure metered and locked: The Python camera library (picamera2)" in text
    assert "✔ Button and status LED" in text  # on gpiozero's MockFactory pins
    assert "2 of 7 checks failed" in lines[-1]


def test_pi_rig_without_gpio(monkeypatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    ok, lines = check(HalSettings(driver="pi"))
    assert not ok
    assert lines[1].startswith("✘ Hardware setup:")
    assert "SCANNER_HAL=mock" in lines[1]


def cli_app(settings: HalSettings, data_dir: Path) -> Flask:
    app = Flask("hal-check-test")
    app.config["SCANNER_SETTINGS"] = SimpleNamespace(hal=settings, data_dir=data_dir)
    return app


def test_cli_exit_codes(tmp_path: Path) -> None:
    good = cli_app(HalSettings.from_mapping({"mock": FAST}), tmp_path)
    result = good.test_cli_runner().invoke(hal_cli, ["check"])
    assert result.exit_code == 0, result.output
    assert "All 7 checks passed" in result.output

    fault = tmp_path / "fault"
    fault.write_text("timeout")
    bad = cli_app(HalSettings.from_mapping({"mock": {**FAST, "fault_file": str(fault)}}),
                  tmp_path)
    result = bad.test_cli_runner().invoke(hal_cli, ["check"])
    assert result.exit_code == 1
    assert "✘ Camera took a photo: The camera took too long" in result.output


def test_cli_refuses_while_a_scan_holds_the_rig(tmp_path: Path) -> None:
    from scanner_app.platform.hardware_lock import hardware_lock

    app = cli_app(HalSettings.from_mapping({"mock": FAST}), tmp_path)
    with hardware_lock(tmp_path, 0):  # what a running scan's worker holds
        result = app.test_cli_runner().invoke(hal_cli, ["check"])
    assert result.exit_code == 1
    assert "Turntable homed" not in result.output  # the rig was not touched
    assert "Error:" in result.output and "Traceback" not in result.output
