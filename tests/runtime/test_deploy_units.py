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
        "scanner-button.service", "scanner-uploads.service", "scanner-web.service",
        "scanner-worker.service"]


def test_scans_and_uploads_never_share_a_worker_process():
    """Issue 9, finding 7: upload processing must never delay a scan."""
    def queues_of(name: str) -> str:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(PROJECT_ROOT / "deploy" / "systemd" / name)
        words = shlex.split(parser["Service"]["ExecStart"])
        return words[words.index("--queues") + 1]

    assert queues_of("scanner-worker.service") == "hardware"
    assert queues_of("scanner-uploads.service") == "uploads"
    target = (PROJECT_ROOT / "deploy" / "systemd" / "scanner.target").read_text()
    assert "scanner-uploads.service" in target


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
