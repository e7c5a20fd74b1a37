"""A profile's `auto_reconstruct` key: a real true/false, anything else refused with a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner_app.config import ConfigError, load_settings


def _settings(tmp_path: Path, profile_body: str):
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "scanner.toml").write_text(
        f'[profiles.auto]\nframes = 12\n{profile_body}\n[profiles.plain]\nframes = 12\n'
        '[scans]\ndefault_profile = "auto"\n'
    )
    return load_settings(env={"SCANNER_DATA_DIR": str(tmp_path)}, config_dir=config)


def test_auto_reconstruct_is_read_and_defaults_to_false(tmp_path: Path):
    settings = _settings(tmp_path, "auto_reconstruct = true")
    assert settings.profiles["auto"].auto_reconstruct is True
    assert settings.profiles["plain"].auto_reconstruct is False


@pytest.mark.parametrize("raw", ['"yes"', "1", '"true"'])
def test_auto_reconstruct_must_be_a_boolean(tmp_path: Path, raw: str):
    with pytest.raises(ConfigError, match="profiles.auto.auto_reconstruct must be true or false"):
        _settings(tmp_path, f"auto_reconstruct = {raw}")
