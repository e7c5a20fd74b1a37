"""Hardware abstraction layer of the scanning station: camera, turntable, light, button.

The rest of the station imports only from here; which drivers run (simulated or
Raspberry Pi) is chosen by `HalSettings.driver` and loaded lazily by `load_rig`.
"""

from hal.errors import (
    CameraError,
    CameraTimeout,
    CameraUnplugged,
    HardwareError,
    HardwareStopped,
    TurntableError,
)
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
