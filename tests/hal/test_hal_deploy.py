"""The systemd units: no hard-coded user or home, network-online, the lgpio pin factory
named, and the worker's ExecStopPost runs a command that exists (safe-off)."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("scanner-*.service"))


def service(unit: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(unit)
    return parser


def test_units_name_no_user_or_home_and_wait_for_the_network():
    assert len(UNITS) == 5  # web, scan worker, uploads worker, processing worker, button
    for unit in UNITS:
        text = unit.read_text()
        assert "/home/pi" not in text and "User=pi" not in text, unit.name
        parsed = service(unit)
        assert parsed["Service"]["User"] == "@USER@"
        assert "network-online.target" in parsed["Unit"]["Wants"]
        assert "network-online.target" in parsed["Unit"]["After"]


def test_gpio_units_name_the_pin_factory_and_a_runtime_dir_for_lgpio():
    for name in ("scanner-worker.service", "scanner-button.service"):
        text = (ROOT / "deploy" / "systemd" / name).read_text()
        assert "Environment=GPIOZERO_PIN_FACTORY=lgpio" in text
        assert "Environment=LG_WD=%t/" in text and "RuntimeDirectory=" in text


def test_worker_switches_motor_and_light_off_after_it_stops():
    from scanner_app.cli import cli

    line = service(ROOT / "deploy" / "systemd" / "scanner-worker.service")["Service"][
        "ExecStopPost"]
    words = shlex.split(line)
    assert words[0].endswith("/.venv/bin/scanner") and words[1:] == ["hal", "safe-off"]
    result = CliRunner().invoke(cli, [*words[1:], "--help"])
    assert result.exit_code == 0, result.output
