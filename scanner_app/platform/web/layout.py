"""What every page shows around its content: the mock-hardware banner, whether someone is
signed in, and the template filters for times and durations in the station's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint
from flask_login import current_user

from scanner_app.config import current_settings


def layout_context() -> dict:
    settings = current_settings()
    # A browser login (Flask-Login's user); API keys are not people and get no navigation.
    person = current_user if current_user and current_user.is_authenticated else None
    return {
        "mock_hardware": settings.hal.driver == "mock",
        "signed_in": person is not None,
        "is_admin": bool(person is not None and getattr(person, "is_admin", False)),
    }


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Naive UTC from the database, shown in SCANNER_TIMEZONE (the system's when unset)."""
    if value is None:
        return "—"
    zone = current_settings().timezone
    return value.replace(tzinfo=UTC).astimezone(zone).strftime(fmt)


def duration(seconds: float | int | None) -> str:
    """An ETA a person can read at a glance: '12 s', '3 min', '1 h 05 min'."""
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min {seconds % 60:02d} s" if minutes < 10 else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def file_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def init_layout(bp: Blueprint) -> None:
    """Attach the layout's context and filters app-wide through a blueprint."""
    bp.app_context_processor(layout_context)
    bp.app_template_filter("local_time")(local_time)
    bp.app_template_filter("duration")(duration)
    bp.app_template_filter("file_size")(file_size)
