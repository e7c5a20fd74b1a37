"""Facts for the station page that are not the health checks: the Pi's CPU temperature and
throttling (not available elsewhere), where the turntable stands according to the rig's
position file, and the versions the station runs.

Reading these touches no hardware: a sysfs file, `vcgencmd get_throttled` when it is
installed, the position file the worker writes, and package metadata (importlib.metadata
reads it without importing the package, so picamera2 and gpiozero stay unimported here).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from scanner_app.config import Settings

# Module attributes so tests can point them at files of their own.
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
VCGENCMD = "vcgencmd"  # looked up on PATH
OS_RELEASE = Path("/etc/os-release")
NOT_AVAILABLE = "not available"

# `vcgencmd get_throttled` bits (Raspberry Pi documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit reached now",
    16: "under-voltage has occurred since boot",
    17: "frequency capping has occurred since boot",
    18: "throttling has occurred since boot",
    19: "soft temperature limit has occurred since boot",
}
LIBRARIES = ("Flask", "SQLAlchemy", "alembic", "rq", "redis", "htmx-flask", "gunicorn",
             "Pillow", "opencv-python-headless", "opencv-python", "numpy", "pycolmap",
             "trimesh", "scikit-image", "picamera2", "gpiozero", "lgpio")
APP_DISTRIBUTION = "scanner-station"


def cpu_temperature(path: Path | None = None) -> dict[str, Any]:
    """{"celsius": float or None, "text": "52.3 °C" or "not available"}."""
    try:
        raw = (path or THERMAL_ZONE).read_text(encoding="ascii").strip()
        celsius = int(raw) / 1000.0
    except (OSError, ValueError):
        return {"celsius": None, "text": NOT_AVAILABLE}
    return {"celsius": celsius, "text": f"{celsius:.1f} °C"}


def parse_throttled(output: str) -> dict[str, Any] | None:
    """`throttled=0x50005` -> its value and what its bits mean; None if unreadable."""
    _, _, value = output.strip().partition("=")
    try:
        bits = int(value, 16)
    except ValueError:
        return None
    flags = [text for bit, text in sorted(THROTTLE_BITS.items()) if bits & (1 << bit)]
    now = any(bits & (1 << bit) for bit in range(4))
    if not flags:
        summary = "Not throttled, and no under-voltage since boot."
    elif now:
        summary = ("Throttled now: " + "; ".join(flags) + ". Use the official power supply "
                   "and keep the Pi cool.")
    else:
        summary = "Fine now, but since boot: " + "; ".join(flags) + "."
    return {"value": f"0x{bits:x}", "flags": flags, "now": now, "text": summary}


def throttling(command: str | None = None) -> dict[str, Any]:
    """The Pi's throttling flags from `vcgencmd get_throttled`, or "not available"."""
    binary = shutil.which(command or VCGENCMD)
    if binary is None:
        return {"value": None, "flags": [], "now": False, "text": NOT_AVAILABLE}
    try:
        done = subprocess.run([binary, "get_throttled"], capture_output=True, text=True,
                              timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    parsed = parse_throttled(done.stdout) if done is not None and done.returncode == 0 else None
    return parsed or {"value": None, "flags": [], "now": False, "text": NOT_AVAILABLE}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def os_name(path: Path | None = None) -> str:
    try:
        for line in (path or OS_RELEASE).read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip('"')
    except OSError:
        pass
    return platform.system()


def versions() -> list[tuple[str, str]]:
    """(what, version) for the station, Python, the OS and the libraries installed."""
    found = [("Scanning station", _version(APP_DISTRIBUTION) or "unknown (not installed)"),
             ("Python", platform.python_version()),
             ("Operating system", f"{os_name()} (kernel {platform.release()}, "
                                  f"{platform.machine()})")]
    found += [(name, version) for name in LIBRARIES if (version := _version(name))]
    return found


def position_file(settings: Settings) -> dict[str, Any] | None:
    """Where the turntable stands according to its position file (what the last job wrote):
    angle, how its zero was set, and whether a move was cut off. None without a file."""
    from hal.position import PositionStore  # a JSON file reader; no driver is imported

    position = PositionStore(settings.hal.position_file).load()
    if position is None:
        return None
    angle = None
    if position.steps_per_rev:
        angle = round((position.steps / position.steps_per_rev * 360.0) % 360.0, 2)
    return {"angle_deg": angle, "zero": position.zero,
            "move_interrupted": position.moving_to is not None,
            "updated_at": position.updated_at or None}
