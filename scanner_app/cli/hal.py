"""`scanner hal check`: the logic lives in hal/check.py; this only wires it to Flask's CLI."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from hal.check import run_hal_check

hal_cli = click.Group("hal", help="Check the camera, turntable and light.")


@hal_cli.command("check")
@with_appcontext
def check() -> None:
    """Home the turntable, turn it a quarter, take one photo and switch the light on/off."""
    hal_settings = current_app.config["SCANNER_SETTINGS"].hal
    if not run_hal_check(hal_settings, out=click.echo):
        raise SystemExit(1)
