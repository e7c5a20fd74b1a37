"""Settings: config/*.toml files, overridden by SCANNER_* environment variables.

Loaded once per process into a frozen Settings object kept in app.config["SCANNER_SETTINGS"].
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hal import HalSettings
from hal.settings import apply_env_overrides

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


class ConfigError(ValueError):
    """A setting has a value the station cannot use; the message says which and why."""


@dataclass(frozen=True)
class ScanProfile:
    name: str
    frames: int
    settle_seconds: float
    resolution: tuple[int, int]
    jpeg_quality: int
    # (elevation_deg, frames) per ring; () = one ring of `frames` at the rig's elevation.
    rings: tuple[tuple[float, int], ...] = ()
    # Then a second pass of the same rings with the object turned over (guided).
    turn_over: bool = False
    # Queue a reconstruction (processing queue) when a scan of this profile completes.
    auto_reconstruct: bool = False


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None  # None: the private redis-server in the data dir
    timezone: ZoneInfo | None  # None: the system's
    max_upload_mb: int
    disk_reserve_mb: int
    profiles: dict[str, ScanProfile]
    default_profile: str
    hal: HalSettings
    # A scan (all rings, both passes) takes at most this many frames.
    max_scan_frames: int = 720
    # A real rig's first scan of a set-up asks to take the object off for background plates.
    guided_plates: bool = False
    # Uploaded images with more pixels are invalid and never decoded (a small PNG can
    # unpack to gigabytes). 100 MP: the largest supported sensor (IMX477, 12.3 MP) with room
    # for stitched or medium-format uploads.
    max_image_megapixels: float = 100.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"


def _merge(base: dict, override: Mapping) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml_files(config_dir: Path) -> dict:
    data: dict = {}
    # hal.toml and scanner.toml hold different tables; local.toml overrides both.
    for name in ("scanner.toml", "hal.toml", "local.toml"):
        path = config_dir / name
        if path.exists():
            try:
                data = _merge(data, tomllib.loads(path.read_text(encoding="utf-8")))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file.") from exc
    return data


def _number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to e.g. {default}.") from None


def _timezone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"SCANNER_TIMEZONE={name!r} is not a known time zone; use a name like 'Europe/Berlin'."
        ) from None


def load_settings(
    env: Mapping[str, str] | None = None, config_dir: Path | None = None
) -> Settings:
    """Build Settings from config files and the environment (environment wins)."""
    env = os.environ if env is None else env
    # SCANNER_CONFIG_DIR: another folder of scanner.toml/hal.toml/local.toml (tests, a second
    # station on one machine).
    data = _read_toml_files(config_dir or Path(env.get("SCANNER_CONFIG_DIR") or CONFIG_DIR))
    station = data.get("station", {})

    data_dir = Path(env.get("SCANNER_DATA_DIR") or station.get("data_dir") or "~/scanner_data")
    data_dir = data_dir.expanduser().resolve()
    database_url = env.get("SCANNER_DATABASE_URL") or station.get("database_url") or ""
    if not database_url:
        database_url = f"sqlite:///{data_dir / 'scanner.db'}"
    redis_url = env.get("SCANNER_REDIS_URL") or station.get("redis_url") or None

    # SCANNER_HAL and SCANNER_MOCK_* (hal's own list) override the [hal] table.
    hal_table = apply_env_overrides(data.get("hal", {}), env)
    hal_table.setdefault("driver", "mock")
    hal_table.setdefault("data_dir", str(data_dir))  # the rig keeps its position there
    mock = hal_table.setdefault("mock", {})
    # Lets tests and demos make the mock camera fail inside a running worker.
    mock.setdefault("fault_file", str(data_dir / "mock-fault"))
    try:
        hal = HalSettings.from_mapping(hal_table)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    profiles = {
        name: ScanProfile(
            name=name,
            frames=int(p.get("frames", 36)),
            settle_seconds=float(p.get("settle_seconds", 0.3)),
            resolution=tuple(p.get("resolution", (2028, 1520))),
            jpeg_quality=int(p.get("jpeg_quality", 92)),
            rings=_profile_rings(name, p.get("rings", [])),
            turn_over=bool(p.get("turn_over", False)),
            auto_reconstruct=_profile_bool(name, "auto_reconstruct", p),
        )
        for name, p in data.get("profiles", {}).items()
    }
    default_profile = data.get("scans", {}).get("default_profile", "standard")
    if profiles and default_profile not in profiles:
        raise ConfigError(f"scans.default_profile {default_profile!r} is not a defined profile.")

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        timezone=_timezone(env.get("SCANNER_TIMEZONE") or station.get("timezone") or ""),
        max_upload_mb=_number(
            env, "SCANNER_MAX_UPLOAD_MB", int, int(station.get("max_upload_mb", 512))
        ),
        disk_reserve_mb=_number(
            env, "SCANNER_DISK_RESERVE_MB", int, int(station.get("disk_reserve_mb", 500))
        ),
        profiles=profiles,
        default_profile=default_profile,
        hal=hal,
        max_scan_frames=int(data.get("scans", {}).get("max_total_frames", 720)),
        guided_plates=bool(data.get("scans", {}).get("guided_plates", False)),
        max_image_megapixels=_positive(_number(
            env, "SCANNER_MAX_IMAGE_MEGAPIXELS", float,
            float(station.get("max_image_megapixels", 100)),
        ), "SCANNER_MAX_IMAGE_MEGAPIXELS (or max_image_megapixels in config/scanner.toml)"),
    )


def _positive(value: float, name: str) -> float:
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a number above 0, e.g. 100.")
    return value


def _profile_bool(name: str, key: str, profile: Mapping) -> bool:
    """A profile's true/false key; a string like "yes" is refused rather than read as true."""
    value = profile.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"profiles.{name}.{key} must be true or false (without quotes), "
                          f"not {value!r}.")
    return value


def _profile_rings(name: str, rings: Any) -> tuple[tuple[float, int], ...]:
    """A profile's `rings = [{elevation_deg = 10, frames = 36}, ...]` (checked per scan)."""
    try:
        return tuple((float(r["elevation_deg"]), int(r["frames"])) for r in rings)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"profiles.{name}.rings must be a list of tables like "
                          "{elevation_deg = 20, frames = 36}.") from None


def current_settings() -> Settings:
    """The Settings of the running app (inside an app context)."""
    from flask import current_app

    return settings_of(current_app)


def settings_of(app: Any) -> Settings:
    """The Settings an app was made with (where the app object is at hand, outside any app
    context: a worker, a CLI command before it pushes one)."""
    return app.config["SCANNER_SETTINGS"]
