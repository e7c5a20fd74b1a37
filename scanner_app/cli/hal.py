"""`scanner hal check`: the logic lives in hal/check.py; this only wires it to Flask's CLI."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from hal import safe_off
from hal.check import run_hal_check
from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock

hal_cli = click.Group("hal", help="Check the camera, turntable, light and button.")


@hal_cli.command("check")
@click.option("--set-zero", is_flag=True,
              help="First call where the platter stands now 0° (turn it to its 0° mark).")
@with_appcontext
def check(set_zero: bool) -> None:
    """Home the turntable, turn it a quarter, take one photo, switch the light on/off and
    blink the button's status LED."""
    settings = current_app.config["SCANNER_SETTINGS"]
    try:
        # One owner per device: never drive the rig while a scan's worker holds it.
        with hardware_lock(settings.data_dir, 0):
            ok = run_hal_check(settings.hal, out=click.echo, set_zero=set_zero)
    except HardwareBusy as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


@hal_cli.command("safe-off")
@with_appcontext
def safe_off_command() -> None:
    """Switch the motor driver and the light off (the worker unit runs this after it stops)."""
    for line in safe_off(current_app.config["SCANNER_SETTINGS"].hal):
        click.echo(line)
