"""Hardware abstraction layer of the scanning station: camera, turntable, light, button.

The rest of the station imports only from here; which drivers run (simulated or
Raspberry Pi) is chosen by `HalSettings.driver` and loaded lazily by `load_rig`.

Names other than the errors are loaded on first use (PEP 562 module __getattr__): the
station's settings need only `HalSettings`, and every process reads them, so importing hal
must not bring the rig's factory, interfaces and maintenance along (issue 15: lean processes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hal.errors import (
    CameraError,
    CameraTimeout,
    CameraUnplugged,
    HardwareError,
    HardwareStopped,
    TurntableError,
)

if TYPE_CHECKING:
    from hal.factory import load_button, load_rig, rig_is_mock
    from hal.interfaces import (
        Camera,
        CaptureInfo,
        ExposureSettings,
        Light,
        Rig,
        StartButton,
        Turntable,
    )
    from hal.maintenance import safe_off, set_zero_here
    from hal.settings import HalSettings

# Where each lazily loaded name lives.
_LAZY = {
    "load_button": "hal.factory",
    "load_rig": "hal.factory",
    "rig_is_mock": "hal.factory",
    "Camera": "hal.interfaces",
    "CaptureInfo": "hal.interfaces",
    "ExposureSettings": "hal.interfaces",
    "Light": "hal.interfaces",
    "Rig": "hal.interfaces",
    "StartButton": "hal.interfaces",
    "Turntable": "hal.interfaces",
    "safe_off": "hal.maintenance",
    "set_zero_here": "hal.maintenance",
    "HalSettings": "hal.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Camera",
    "CameraError",
    "CameraTimeout",
    "CameraUnplugged",
    "CaptureInfo",
    "ExposureSettings",
    "HalSettings",
    "HardwareError",
    "HardwareStopped",
    "Light",
    "Rig",
    "StartButton",
    "Turntable",
    "TurntableError",
    "load_button",
    "load_rig",
    "rig_is_mock",
    "safe_off",
    "set_zero_here",
]
