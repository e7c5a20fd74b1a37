"""The systemd units start commands that exist, with the options they pass."""

from __future__ import annotations

import configparser
import shlex

import pytest
from click.testing import CliRunner

from scanner_app.cli import cli
from scanner_app.config import PROJECT_ROOT

UNITS = sorted((PROJECT_ROOT / "deploy" / "systemd").glob("scanner-*.service"))


def test_every_part_has_a_unit():
    assert [u.name for u in UNITS] == [
        "scanner-button.service", "scanner-processing.service", "scanner-uploads.service",
        "scanner-web.service", "scanner-worker.service"]


def service_of(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(PROJECT_ROOT / "deploy" / "systemd" / name)
    return parser["Service"]


def queues_of(name: str) -> str:
    words = shlex.split(service_of(name)["ExecStart"])
    return words[words.index("--queues") + 1]


def test_scans_and_uploads_never_share_a_worker_process():
    """Issue 9, finding 7: upload processing must never delay a scan."""
    assert queues_of("scanner-worker.service") == "hardware"
    assert queues_of("scanner-uploads.service") == "uploads"
    target = (PROJECT_ROOT / "deploy" / "systemd" / "scanner.target").read_text()
    assert "scanner-uploads.service" in target


def test_reconstructions_run_in_a_worker_of_their_own_at_idle_priority():
    """Issue 13: a Pi installed with the units builds models (a processing worker), and a
    reconstruction only gets CPU and disk time the scan worker does not want."""
    service = service_of("scanner-processing.service")
    assert queues_of("scanner-processing.service") == "processing"
    assert "--idle" in shlex.split(service["ExecStart"])
    assert service["CPUSchedulingPolicy"] == "idle"
    assert service["IOSchedulingClass"] == "idle"
    target = (PROJECT_ROOT / "deploy" / "systemd" / "scanner.target").read_text()
    assert "scanner-processing.service" in target


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_commands_exist(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(unit)
    commands = [parser["Service"]["ExecStart"]]
    if "ExecStartPre" in parser["Service"]:
        commands.append(parser["Service"]["ExecStartPre"])
    for line in commands:
        words = shlex.split(line)
        assert words[0].endswith("/.venv/bin/scanner")
        # --help parses every option the unit passes before it: unknown ones fail here.
        result = CliRunner().invoke(cli, [*words[1:], "--help"])
        assert result.exit_code == 0, (line, result.output)
