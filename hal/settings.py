"""Hardware settings: plain, frozen, picklable dataclasses built from the `[hal]` config table.

`HalSettings.from_mapping()` takes the `[hal]` table of config/hal.toml (after the app applied
environment overrides, see `apply_env_overrides`). Missing keys keep the dataclass defaults;
unknown keys and bad values raise ValueError with a sentence naming the key, because a typo
in a pin number should stop the station at start-up, not half way through a scan.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.setting_values import (
    Pin,
    _bool,
    _choice,
    _int,
    _lens_position,
    _non_negative,
    _non_negative_int,
    _pin,
    _positive,
    _positive_int,
    _resolution,
    _str,
    section,
    setting,
)
from hal.tilt_settings import TiltSettings

DRIVERS = ("mock", "pi")
TURNTABLE_DRIVERS = ("step_dir", "uln2003")
HOME_DIRECTIONS = ("forward", "reverse")
NOISE_REDUCTION = ("off", "fast", "high_quality", "minimal")

# Motor defaults per driver when the config leaves steps_per_rev / gear_ratio out (0):
# a 1.8° NEMA-17 turns directly; the 28BYJ-48 has 32 steps per motor turn behind a
# 63.68395:1 gearbox (32 x 63.68395 = 2037.886 full steps per output turn, not 2048).
MOTOR_DEFAULTS = {"step_dir": (200, 1.0), "uln2003": (32, 63.68395)}

@dataclass(frozen=True)
class MockSettings:
    capture_seconds: float = setting(0.2, _non_negative)
    seconds_per_rev: float = setting(8.0, _non_negative)
    resolution: tuple[int, int] = setting((1280, 960), _resolution)
    fault_file: str = setting("", _str)
    # The simulated platter's true angle ("" = <data dir>/mock-platter.json), kept apart
    # from the driver's belief so tests can catch a belief that differs from the truth.
    platter_file: str = setting("", _str)
    # Driver steps per platter turn of the simulated motor (fine: 0.00625° a step).
    steps_per_rev: int = setting(57600, _positive_int)
    # A released (unpowered) rotor falls into the nearest detent this far apart; 0 = none.
    detent_deg: float = setting(1.8, _non_negative)
    # Frames until new exposure values are in effect, like libcamera (2-3 frames).
    control_delay_frames: int = setting(2, _non_negative_int)


@dataclass(frozen=True)
class CameraSettings:
    camera_num: int = setting(0, _int)
    resolution: tuple[int, int] = setting((0, 0), _resolution)  # (0, 0): full sensor size
    lens_position: float | None = setting(None, _lens_position)  # None: autofocus once
    jpeg_quality: int = setting(92, _positive_int)
    metering_frames: int = setting(90, _positive_int)
    settle_frames: int = setting(4, _int)
    capture_timeout_s: float = setting(10.0, _positive)
    # Metering ends when AE has converged and the colour gains held still for
    # awb_stable_frames frames (within awb_tolerance), or after metering_timeout_s.
    metering_timeout_s: float = setting(4.0, _positive)
    awb_stable_frames: int = setting(4, _positive_int)
    awb_tolerance: float = setting(0.01, _positive)
    # A lock counts once the frames report the asked values within this fraction.
    lock_tolerance: float = setting(0.03, _positive)
    lock_timeout_s: float = setting(3.0, _positive)
    autofocus_timeout_s: float = setting(5.0, _positive)
    noise_reduction: str = setting("off", _choice(*NOISE_REDUCTION))
    # Lens focal length in mm for EXIF; 0 = the camera module's own lens (HQ/GS: set it).
    focal_length_mm: float = setting(0.0, _non_negative)
    # true = pick a photo size the sensor delivers without cropping or upscaling.
    fit_to_sensor: bool = setting(True, _bool)


@dataclass(frozen=True)
class TurntablePins:
    step: Pin = setting(20, _pin)
    dir: Pin = setting(21, _pin)
    enable: Pin = setting(16, _pin)
    enable_active_low: bool = setting(True, _bool)
    in1: Pin = setting(17, _pin)
    in2: Pin = setting(18, _pin)
    in3: Pin = setting(27, _pin)
    in4: Pin = setting(22, _pin)
    endstop: Pin = setting(None, _pin)
    endstop_active_low: bool = setting(True, _bool)
    # Consecutive active reads (one per step) before the switch counts as pressed.
    endstop_samples: int = setting(3, _positive_int)


@dataclass(frozen=True)
class TurntableSettings:
    driver: str = setting("step_dir", _choice(*TURNTABLE_DRIVERS))
    pins: TurntablePins = section(TurntablePins)
    steps_per_rev: int = setting(0, _non_negative_int)  # 0: the driver's usual motor
    microsteps: int = setting(16, _positive_int)
    gear_ratio: float = setting(0.0, _non_negative)  # 0: the driver's usual motor
    max_speed_deg_s: float = setting(30.0, _positive)
    accel_deg_s2: float = setting(60.0, _non_negative)
    home_direction: str = setting("forward", _choice(*HOME_DIRECTIONS))
    home_max_deg: float = setting(400.0, _positive)
    home_speed_deg_s: float = setting(15.0, _positive)
    hold_torque: bool = setting(False, _bool)
    reverse: bool = setting(False, _bool)
    # Where the position is kept between jobs and power cuts; "" = <data dir>/rig-position.json.
    state_file: str = setting("", _str)
    # The platter top's radius: its rim fixes the scale and height of refined poses (0: none).
    platter_radius_mm: float = setting(120.0, _non_negative)

    def __post_init__(self) -> None:
        # The motor's own defaults come as a pair: a steps_per_rev given alone is the
        # output shaft's (e.g. 2048 for a 28BYJ-48 counted the old way), gear 1.
        steps, gear = MOTOR_DEFAULTS[self.driver]
        if self.steps_per_rev != 0:
            gear = 1.0
        if self.steps_per_rev == 0:
            object.__setattr__(self, "steps_per_rev", steps)
        if self.gear_ratio == 0:
            object.__setattr__(self, "gear_ratio", gear)
        if self.driver == "uln2003" and self.microsteps not in (1, 2):
            raise ValueError(
                "Setting 'hal.turntable.microsteps' must be 1 (full steps) or 2 (half steps) "
                f"with the ULN2003 driver, not {self.microsteps}."
            )

    @property
    def steps_per_platter_rev(self) -> float:
        """Driver steps for one full platter turn (motor steps x microsteps x gearing)."""
        return self.steps_per_rev * self.microsteps * self.gear_ratio


HARDWARE_PWM_PINS = (12, 13, 18, 19)


@dataclass(frozen=True)
class LightSettings:
    pin: Pin = setting(12, _pin)
    # false: plain DC, fully on whenever it is on (no banding in photos). true: dimmable by
    # the Pi's hardware PWM (GPIO 12/13/18/19 with the kernel's pwm overlay); software PWM
    # is never used, because its jitter shows as dark bands across the photos.
    pwm: bool = setting(False, _bool)
    brightness: float = setting(1.0, _non_negative)
    active_high: bool = setting(True, _bool)
    pwm_frequency: float = setting(20000.0, _positive)
    pwm_chip: int = setting(0, _non_negative_int)  # /sys/class/pwm/pwmchipN
    pwm_channel: int = setting(-1, _int)  # -1: from the pin (and the Pi model)

    def __post_init__(self) -> None:
        if self.pwm and self.pin not in HARDWARE_PWM_PINS:
            raise ValueError(
                f"Setting 'hal.light.pwm' = true needs the light on a hardware PWM pin "
                f"(GPIO 12, 13, 18 or 19 with the pwm overlay), not {self.pin!r}: move the "
                "light or set pwm = false (plain on/off, no dimming).")


@dataclass(frozen=True)
class ButtonSettings:
    pin: Pin = setting(26, _pin)
    pull_up: bool = setting(True, _bool)
    bounce_time: float = setting(0.05, _non_negative)
    hold_time: float = setting(2.0, _positive)
    led_pin: Pin = setting(19, _pin)
    led_active_high: bool = setting(True, _bool)


def _driver(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in DRIVERS:
        raise ValueError(
            f"Unknown hardware driver {value!r} (set by SCANNER_HAL or `driver` in the [hal] "
            "table of config/hal.toml): use 'mock' for the simulated rig or 'pi' for the "
            "real camera and motors on a Raspberry Pi."
        )
    return text


@dataclass(frozen=True)
class HalSettings:
    driver: str = setting("mock", _driver)
    # The station's data dir ("" = $SCANNER_DATA_DIR or ~/scanner_data, as the app does).
    data_dir: str = setting("", _str)
    mock: MockSettings = section(MockSettings)
    camera: CameraSettings = section(CameraSettings)
    turntable: TurntableSettings = section(TurntableSettings)
    light: LightSettings = section(LightSettings)
    button: ButtonSettings = section(ButtonSettings)
    tilt: TiltSettings = section(TiltSettings)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> HalSettings:
        """Build settings from the `[hal]` table; missing keys keep their defaults."""
        return _build(cls, mapping or {}, "hal")

    @classmethod
    def from_toml_file(
        cls, path: str | Path, environ: Mapping[str, str] | None = None
    ) -> HalSettings:
        """Read the `[hal]` table of a TOML file, then apply SCANNER_* overrides if given."""
        with open(path, "rb") as f:
            table = tomllib.load(f).get("hal", {})
        if environ is not None:
            table = apply_env_overrides(table, environ)
        return cls.from_mapping(table)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (tuples become lists), the inverse of from_mapping."""
        return _jsonable(dataclasses.asdict(self))

    @property
    def data_path(self) -> Path:
        text = self.data_dir or os.environ.get("SCANNER_DATA_DIR") or "~/scanner_data"
        return Path(text).expanduser()

    @property
    def position_file(self) -> Path:
        """Where the rig keeps its position (steps) between jobs, restarts and power cuts."""
        return Path(self.turntable.state_file) if self.turntable.state_file \
            else self.data_path / "rig-position.json"

    @property
    def tilt_file(self) -> Path:
        """Where the tilt axis keeps its elevation between jobs (no switch to home on)."""
        return Path(self.tilt.state_file) if self.tilt.state_file \
            else self.data_path / "tilt-position.json"

    @property
    def arm_file(self) -> Path:
        """The simulated camera arm's true elevation (mock driver only)."""
        return self.data_path / "mock-arm.json"

    @property
    def platter_file(self) -> Path:
        """The simulated platter's true angle (mock driver only)."""
        return Path(self.mock.platter_file) if self.mock.platter_file \
            else self.data_path / "mock-platter.json"


def _build(cls: type, mapping: Mapping[str, Any], where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"[{where}] in the configuration must be a table of settings.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"Unknown setting '{where}.{key}' in the hardware configuration.{hint}")
    values: dict[str, Any] = {}
    for name, value in mapping.items():
        meta = fields[name].metadata
        if "nested" in meta:
            values[name] = _build(meta["nested"], value, f"{where}.{name}")
            continue
        try:
            values[name] = meta["conv"](value)
        except ValueError as exc:
            if name == "driver" and where == "hal":
                raise
            raise ValueError(f"Setting '{where}.{name}' = {value!r} is not valid: {exc}.") from exc
        except (TypeError, IndexError) as exc:
            raise ValueError(f"Setting '{where}.{name}' = {value!r} is not valid: {exc}.") from exc
    return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# Environment variables that override the TOML, so one config file serves the laptop,
# the CI and the Pi. Values stay strings; from_mapping converts them.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "SCANNER_HAL": ("driver",),
    "SCANNER_DATA_DIR": ("data_dir",),
    "SCANNER_MOCK_SECONDS_PER_REV": ("mock", "seconds_per_rev"),
    "SCANNER_MOCK_CAPTURE_SECONDS": ("mock", "capture_seconds"),
    "SCANNER_MOCK_RESOLUTION": ("mock", "resolution"),
    "SCANNER_MOCK_FAULT_FILE": ("mock", "fault_file"),
    "SCANNER_TILT": ("tilt", "driver"),
}


def apply_env_overrides(mapping: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Copy of the `[hal]` table with SCANNER_HAL / SCANNER_MOCK_* variables applied."""
    result: dict[str, Any] = {
        k: dict(v) if isinstance(v, Mapping) else v for k, v in mapping.items()
    }
    for var, keys in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value is None or value == "":
            continue
        target = result
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return result
