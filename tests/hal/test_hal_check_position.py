"""`scanner hal check` says whether the position is known or assumed, sets "here is 0°"
on request, refuses shared pins, and `safe-off` / `--set-zero` exist on the CLI."""

from __future__ import annotations

from click.testing import CliRunner

from hal import HalSettings, load_rig
from hal.check import run_hal_check
from hal.mock.rig import build_platter

FAST = {"capture_seconds": 0.0, "seconds_per_rev": 0.0, "resolution": [320, 240]}


def check(settings: HalSettings, **kw) -> tuple[bool, list[str]]:
    lines: list[str] = []
    return run_hal_check(settings, out=lines.append, **kw), lines


def test_check_says_the_position_is_assumed_without_a_home_switch() -> None:
    ok, lines = check(HalSettings.from_mapping({"mock": FAST}))
    assert ok
    homed = next(line for line in lines if line.startswith("✔ Turntable homed"))
    assert "The position is assumed" in homed and "--set-zero" in homed


def test_set_zero_makes_where_the_platter_stands_zero() -> None:
    settings = HalSettings.from_mapping({"mock": FAST})
    with load_rig(settings) as rig:
        rig.turntable.move_to(40)  # the belief: 40°
    build_platter(settings).set_true_angle(0)  # someone turned it back to the 0° mark
    ok, lines = check(settings, set_zero=True)
    assert ok and lines[1].startswith("✔ 0° set where the platter stands")
    assert "you set by hand" in next(line for line in lines if "Turntable homed" in line)
    assert build_platter(settings).true_angle() == 90.0  # the check's quarter turn, true


def test_shared_pins_stop_the_check_before_anything_moves() -> None:
    settings = HalSettings.from_mapping({"driver": "pi", "button": {"pin": 16}})
    ok, lines = check(settings)
    assert not ok
    assert lines[1] == ("✘ Pins: GPIO16 is set for both the stepper ENABLE and the start "
                        "button: give each its own pin in config/hal.toml.")


def test_cli_offers_set_zero_and_safe_off() -> None:
    from scanner_app.cli.hal import hal_cli

    runner = CliRunner()
    assert "--set-zero" in runner.invoke(hal_cli, ["check", "--help"]).output
    assert runner.invoke(hal_cli, ["safe-off", "--help"]).exit_code == 0
