"""How one hardware setting is read from config text: converters that raise with a reason,
and the dataclass field helpers that carry them (used by hal/settings.py and its sections)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

# A GPIO pin as gpiozero takes it: a BCM number (17) or a name ("GPIO17", "BOARD11").
Pin = int | str | None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got true/false")
    return float(value)


def _positive(value: Any) -> float:
    v = _float(value)
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


def _non_negative(value: Any) -> float:
    v = _float(value)
    if v < 0:
        raise ValueError("must not be negative")
    return v


def _int(value: Any) -> int:
    if isinstance(value, bool) or float(value) != int(value):
        raise TypeError("expected a whole number")
    return int(value)


def _non_negative_int(value: Any) -> int:
    v = _int(value)
    if v < 0:
        raise ValueError("must not be negative")
    return v


def _positive_int(value: Any) -> int:
    v = _int(value)
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise TypeError("expected true or false")


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _pin(value: Any) -> Pin:
    # TOML has no null, so "" (or -1, or "none") means "not wired".
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise TypeError("expected a BCM pin number")
    if isinstance(value, int):
        return None if value < 0 else value
    text = str(value).strip()
    if text.lower() in ("", "none", "-1"):
        return None
    return int(text) if text.isdigit() else text


def _resolution(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        value = value.lower().replace(" ", "").split("x")
    w, h = (int(v) for v in value)
    if w < 0 or h < 0:
        raise ValueError("width and height must not be negative")
    return (w, h)


def _lens_position(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    v = _float(value)
    if v < 0:
        raise ValueError('must be "auto" or a lens position in dioptres (0 = infinity)')
    return v


def _choice(*allowed: str) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError("must be one of " + ", ".join(repr(a) for a in allowed))
        return text

    return conv


def setting(default: Any, conv: Callable[[Any], Any]) -> Any:
    """A dataclass field that knows how to read itself from config text."""
    return field(default=default, metadata={"conv": conv})


def section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"nested": cls})
