"""`scanner hal check` on a rig with a tilt axis: the arm swings to both limits and back."""

from __future__ import annotations

from pathlib import Path

from hal import HalSettings
from hal.check import run_hal_check
from hal.mock.rig import build_arm

FAST = {"capture_seconds": 0.01, "seconds_per_rev": 0.04, "resolution": [160, 120]}


def tilt_rig(data_dir: Path, **tilt) -> HalSettings:
    return HalSettings.from_mapping({"data_dir": str(data_dir), "mock": FAST, "tilt": {
        "driver": "step_dir", "min_elevation_deg": 5, "max_elevation_deg": 50, **tilt}})


def test_the_check_swings_the_arm_to_both_limits_and_back(hal_data_dir: Path) -> None:
    settings = tilt_rig(hal_data_dir)
    arm = build_arm(settings)
    arm.set_true_elevation(33)  # where the person left the arm
    lines: list[str] = []
    assert run_hal_check(settings, out=lines.append)
    text = "\n".join(lines)
    # The reported elevations are the simulated arm's truth, read back after each move.
    assert "✔ Camera arm tilted down to its lower limit (5°) (" in text
    assert "✔ Camera arm tilted up to its upper limit (50°) (" in text
    assert "✔ Camera arm back where it stood (33°) (" in text
    order = [next(i for i, line in enumerate(lines) if line.startswith(f"✔ {label}"))
             for label in ("Turntable turned", "Camera arm tilted down", "Camera arm tilted up",
                           "Camera arm back", "Light switched on")]
    assert order == sorted(order)
    for prefix, now in (("✔ Camera arm tilted down", "5.0"), ("✔ Camera arm tilted up", "50.0"),
                        ("✔ Camera arm back", "33.0")):
        assert f"now at {now}°" in next(line for line in lines if line.startswith(prefix))
    assert lines[-1] == "All 10 checks passed: the scanner hardware is ready."
    assert arm.true_elevation() == 33


def test_an_arm_left_outside_the_limits_is_brought_back_inside(hal_data_dir: Path) -> None:
    settings = tilt_rig(hal_data_dir)
    build_arm(settings).set_true_elevation(58)  # limits were narrowed since
    lines: list[str] = []
    assert run_hal_check(settings, out=lines.append)
    assert any(line.startswith("✔ Camera arm back where it stood (50°)") for line in lines)
    assert build_arm(settings).true_elevation() == 50


def test_a_rig_without_a_tilt_axis_has_no_arm_steps(hal_data_dir: Path) -> None:
    lines: list[str] = []
    assert run_hal_check(tilt_rig(hal_data_dir, driver="none"), out=lines.append)
    assert not any("Camera arm" in line for line in lines)
    assert lines[-1] == "All 7 checks passed: the scanner hardware is ready."
