"""`[hal.tilt]`: the camera arm's tilt axis, or none (the operator sets it by hand)."""

from __future__ import annotations

from dataclasses import dataclass

from hal.setting_values import (
    Pin,
    _bool,
    _choice,
    _float,
    _int,
    _non_negative,
    _pin,
    _positive,
    _positive_int,
    _str,
    section,
    setting,
)

TILT_DRIVERS = ("none", "step_dir", "servo")


@dataclass(frozen=True)
class TiltPins:
    step: Pin = setting(5, _pin)
    dir: Pin = setting(6, _pin)
    enable: Pin = setting(13, _pin)
    enable_active_low: bool = setting(True, _bool)
    # Optional switch at the lowest elevation (min_elevation_deg); "" = none.
    endstop: Pin = setting(None, _pin)
    endstop_active_low: bool = setting(True, _bool)
    servo: Pin = setting(18, _pin)


@dataclass(frozen=True)
class TiltSettings:
    """The camera arm's tilt axis. "none": the operator sets the elevation by hand (guided
    rings); "step_dir": a second STEP/DIR stepper; "servo": a hobby servo on one PWM pin."""

    driver: str = setting("none", _choice(*TILT_DRIVERS))
    pins: TiltPins = section(TiltPins)
    min_elevation_deg: float = setting(0.0, _float)
    max_elevation_deg: float = setting(60.0, _float)
    # Where the arm stands when the rig is built (without a home switch the position is
    # kept in state_file), and the elevation of a plain single-ring scan.
    rest_elevation_deg: float = setting(20.0, _float)
    # Stepper: motor steps per turn x microsteps x gearing = steps per arm turn.
    steps_per_rev: int = setting(200, _positive_int)
    microsteps: int = setting(16, _positive_int)
    gear_ratio: float = setting(5.0, _positive)
    max_speed_deg_s: float = setting(10.0, _positive)
    reverse: bool = setting(False, _bool)
    # Servo: pulse widths (seconds) at the servo's end angles, which map to elevations.
    servo_min_angle: float = setting(-90.0, _float)
    servo_max_angle: float = setting(90.0, _float)
    servo_min_pulse_s: float = setting(0.0005, _positive)
    servo_max_pulse_s: float = setting(0.0025, _positive)
    # Servo angle at elevation 0 (mounting offset) and sign (+1 or -1).
    servo_offset_deg: float = setting(0.0, _float)
    servo_direction: int = setting(1, _int)
    # A servo gives no feedback: wait this long after each move for the arm to get there.
    settle_seconds: float = setting(0.5, _non_negative)
    # "" = <data dir>/tilt-position.json
    state_file: str = setting("", _str)

    def __post_init__(self) -> None:
        if not self.min_elevation_deg < self.max_elevation_deg:
            raise ValueError(
                "Setting 'hal.tilt.min_elevation_deg' must be below 'max_elevation_deg' "
                f"({self.min_elevation_deg} is not below {self.max_elevation_deg}).")
        if not self.min_elevation_deg <= self.rest_elevation_deg <= self.max_elevation_deg:
            raise ValueError(
                f"Setting 'hal.tilt.rest_elevation_deg' = {self.rest_elevation_deg} must lie "
                f"between min_elevation_deg ({self.min_elevation_deg}) and max_elevation_deg "
                f"({self.max_elevation_deg}).")
        if self.servo_direction not in (1, -1):
            raise ValueError("Setting 'hal.tilt.servo_direction' must be 1 or -1.")

    @property
    def is_motorised(self) -> bool:
        return self.driver != "none"

    @property
    def steps_per_degree(self) -> float:
        return self.steps_per_rev * self.microsteps * self.gear_ratio / 360.0
