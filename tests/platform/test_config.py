"""Settings: config files, overridden by SCANNER_* variables, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner_app.config import ConfigError, load_settings


def test_embedded_defaults(tmp_path: Path):
    settings = load_settings(env={"SCANNER_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'scanner.db'}"
    assert settings.redis_url is None and settings.redis_socket == tmp_path / "redis.sock"
    assert settings.hal.driver == "mock" and settings.max_upload_mb == 512
    assert settings.hal.mock.capture_seconds == 0.2 and settings.hal.mock.seconds_per_rev == 8
    assert {"quick", "standard", "detailed"} <= set(settings.profiles)


def test_environment_overrides_files(tmp_path: Path):
    settings = load_settings(env={
        "SCANNER_DATA_DIR": str(tmp_path), "SCANNER_DATABASE_URL": "postgresql+psycopg://x/y",
        "SCANNER_REDIS_URL": "redis://127.0.0.1:6379/3", "SCANNER_TIMEZONE": "Europe/Berlin",
        "SCANNER_MOCK_CAPTURE_SECONDS": "0.05", "SCANNER_MOCK_SECONDS_PER_REV": "2",
        "SCANNER_MOCK_RESOLUTION": "320x240", "SCANNER_MAX_UPLOAD_MB": "7",
    })
    assert settings.database_url == "postgresql+psycopg://x/y"
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert str(settings.timezone) == "Europe/Berlin"
    assert (settings.hal.mock.capture_seconds, settings.hal.mock.seconds_per_rev) == (0.05, 2)
    assert settings.hal.mock.resolution == (320, 240) and settings.max_upload_mb == 7


def test_local_toml_overrides_the_shipped_files(tmp_path: Path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "scanner.toml").write_text('[station]\nmax_upload_mb = 10\n')
    (config / "local.toml").write_text('[station]\nmax_upload_mb = 20\n')
    settings = load_settings(env={"SCANNER_DATA_DIR": str(tmp_path)}, config_dir=config)
    assert settings.max_upload_mb == 20


@pytest.mark.parametrize("env,words", [
    ({"SCANNER_TIMEZONE": "Mars/Olympus"}, "not a known time zone"),
    ({"SCANNER_MAX_UPLOAD_MB": "lots"}, "is not a number"),
    ({"SCANNER_MOCK_CAPTURE_SECONDS": "abc"}, "hal.mock.capture_seconds"),
    ({"SCANNER_HAL": "bogus"}, "Unknown hardware driver"),
])
def test_bad_values_say_what_to_fix(tmp_path: Path, env, words):
    with pytest.raises(ConfigError, match=words):
        load_settings(env={"SCANNER_DATA_DIR": str(tmp_path), **env})


def test_broken_toml_names_the_file(tmp_path: Path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "local.toml").write_text("[station\n")
    with pytest.raises(ConfigError, match="local.toml is not valid TOML"):
        load_settings(env={"SCANNER_DATA_DIR": str(tmp_path)}, config_dir=config)


def test_cli_reports_a_bad_setting_as_a_sentence(tmp_path: Path):
    from tests.support import run_cli

    done = run_cli(tmp_path, "doctor", SCANNER_TIMEZONE="Mars/Olympus")
    assert done.returncode == 1
    assert "is not a known time zone" in done.stderr and "Traceback" not in done.stderr


def test_flask_cli_offers_the_station_commands(tmp_path: Path):
    import os
    import subprocess
    import sys

    from scanner_app.config import PROJECT_ROOT

    env = {**os.environ, "SCANNER_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", str(PROJECT_ROOT / "wsgi.py"),
                           "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("apikey", "db", "doctor", "hal", "station", "user", "web", "worker"):
        assert f"  {command} " in done.stdout, command


@pytest.mark.parametrize("command", [["doctor"], ["apikey", "create", "x"],
                                     ["user", "create", "bob", "--password-stdin"]])
def test_commands_on_a_database_without_tables_say_to_migrate(tmp_path: Path, command):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SCANNER_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "scanner_app.cli", *command], env=env,
                          input="long enough password\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "Run 'scanner db upgrade' first" in done.stderr and "Traceback" not in done.stderr
