"""Reading libcamera's frame metadata for metering and for confirming a lock.

Two libcamera generations are in the field: the Raspberry Pi fork from 2025 (libcamera
0.5) reports `AeState` (0 idle, 1 searching, 2 converged) and has ExposureTimeMode /
AnalogueGainMode; older ones report `AeLocked`. Both are read here. White balance converges
more slowly than exposure, so metering also waits until the colour gains hold still.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

AE_STATE_CONVERGED = 2
# libcamera.controls.draft.NoiseReductionModeEnum
NOISE_REDUCTION = {"off": 0, "fast": 1, "high_quality": 2, "minimal": 3}
AF_MODE_MANUAL = 0
AF_MODE_AUTO = 1
MODE_AUTO, MODE_MANUAL = 0, 1  # ExposureTimeMode / AnalogueGainMode


def ae_converged(md: Mapping[str, Any]) -> bool:
    if "AeState" in md:
        return md["AeState"] == AE_STATE_CONVERGED
    return bool(md.get("AeLocked"))


def gains_stable(history: Sequence[tuple[float, float]], frames: int, tolerance: float) -> bool:
    """The last `frames` colour gains all lie within `tolerance` (a fraction) of the last."""
    if len(history) < frames:
        return False
    last = history[-1]
    return all(abs(g[i] - last[i]) <= tolerance * max(last[i], 1e-6)
               for g in history[-frames:] for i in (0, 1))


def total_gain(md: Mapping[str, Any]) -> float:
    """AnalogueGain with the ISP's DigitalGain folded in: what the frame's brightness used."""
    return float(md["AnalogueGain"]) * float(md.get("DigitalGain") or 1.0)


def clamp(value: float, limits: Sequence[Any] | None) -> float:
    if not limits or limits[0] is None or limits[1] is None:
        return value
    return min(max(value, float(limits[0])), float(limits[1]))


def lock_controls(camera_controls: Mapping[str, Any], exposure_us: int, gain: float,
                  colour_gains: tuple[float, float], lens: float | None) -> dict[str, Any]:
    """The controls that fix exposure, gain, white balance (and focus) at these values.

    Only advertised controls are sent (picamera2 refuses others): AeEnable on every
    Raspberry Pi libcamera so far, ExposureTimeMode/AnalogueGainMode from libcamera 0.5 on,
    where upstream dropped AeEnable.
    """
    controls: dict[str, Any] = {"ExposureTime": exposure_us, "AnalogueGain": gain,
                                "AwbEnable": False, "ColourGains": colour_gains}
    if "AeEnable" in camera_controls:
        controls["AeEnable"] = False
    for mode in ("ExposureTimeMode", "AnalogueGainMode"):  # libcamera 0.5: say it outright
        if mode in camera_controls:
            controls[mode] = MODE_MANUAL
    if lens is not None and "LensPosition" in camera_controls:
        controls.update(AfMode=AF_MODE_MANUAL, LensPosition=lens)
    return controls


def auto_controls(camera_controls: Mapping[str, Any]) -> dict[str, Any]:
    controls: dict[str, Any] = {"AwbEnable": True}
    if "AeEnable" in camera_controls:
        controls["AeEnable"] = True
    for mode in ("ExposureTimeMode", "AnalogueGainMode"):
        if mode in camera_controls:
            controls[mode] = MODE_AUTO
    return controls


def in_effect(md: Mapping[str, Any], exposure_us: int, gain: float,
              colour_gains: tuple[float, float], lens: float | None, tolerance: float
              ) -> bool:
    """Whether this frame was taken with the locked values (within `tolerance`).

    The analogue gain alone must match (with AE off the ISP's digital gain stays near 1),
    so a frame from the still-running AE that reaches the same brightness with another
    split of analogue and digital gain does not count; AeState, where sent, must be idle.
    """
    try:
        if md.get("AeState", 0) != 0:
            return False  # AE still running
        if abs(int(md["ExposureTime"]) - exposure_us) > max(tolerance * exposure_us, 30):
            return False  # 30 µs: exposure is set in whole sensor lines
        if abs(float(md["AnalogueGain"]) - gain) > tolerance * gain or \
                abs(total_gain(md) - gain) > tolerance * gain:
            return False
        red, blue = (float(g) for g in md["ColourGains"])
    except (KeyError, TypeError, ValueError):
        return False
    if abs(red - colour_gains[0]) > tolerance * colour_gains[0] or \
            abs(blue - colour_gains[1]) > tolerance * colour_gains[1]:
        return False
    return lens is None or "LensPosition" not in md or \
        abs(float(md["LensPosition"]) - lens) <= 0.05
