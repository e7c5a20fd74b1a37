"""`scanner hal check`, `calibrate`, `mock-object` and `safe-off`: the logic lives in hal/
(check.py, calibration.py, mock/scene.py); this only wires it to Flask's CLI."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from hal import HardwareError, safe_off
from scanner_app.config import current_settings
from scanner_app.platform.hardware_lock import HardwareBusy, hardware_lock

# hal.check (Pillow) and the calibration (OpenCV, numpy) load when their command runs, not in
# every process that builds the `scanner` command group.

hal_cli = click.Group("hal", help="Check the camera, turntable, light and button.")


@hal_cli.command("check")
@click.option("--set-zero", is_flag=True,
              help="First call where the platter stands now 0° (turn it to its 0° mark).")
@with_appcontext
def check(set_zero: bool) -> None:
    """Home the turntable, turn it a quarter, take one photo, switch the light on/off and
    blink the button's status LED."""
    settings = current_settings()
    try:
        # One owner per device: never drive the rig while a scan's worker holds it.
        with hardware_lock(settings.data_dir, 0):
            from hal.check import run_hal_check

            ok = run_hal_check(settings.hal, out=click.echo, set_zero=set_zero)
    except HardwareBusy as exc:
        raise click.ClickException(str(exc)) from None
    if not ok:
        raise SystemExit(1)


@hal_cli.command("safe-off")
@with_appcontext
def safe_off_command() -> None:
    """Switch the motor driver and the light off (the worker unit runs this after it stops)."""
    for line in safe_off(current_settings().hal):
        click.echo(line)


@hal_cli.command("calibrate")
@click.option("--views", default=12, show_default=True, type=click.IntRange(4, 72),
              help="Turntable angles to photograph the board at.")
@with_appcontext
def calibrate(views: int) -> None:
    """Photograph the ChArUco board lying on the platter at several angles and solve the
    camera's lens and its pose to the turntable axis; new scans use the result."""
    try:
        from scanner_app.scans.calibration_run import calibrate_rig

        cal, path = calibrate_rig(current_settings(), views, on_progress=lambda i, n:
                                  click.echo(f"Photo {i} of {n}"))
    except (HardwareBusy, HardwareError) as exc:  # CalibrationError says what to do
        raise click.ClickException(str(exc)) from None
    g, intr = cal.geometry, cal.intrinsics
    click.echo(f"Focal length: {intr.fx:.1f} px at {intr.width}x{intr.height}")
    click.echo(f"Distance to the turntable axis: {g.distance_m * 100:.2f} cm")
    click.echo(f"Camera height: {g.height_m * 100:.2f} cm; elevation: {g.elevation_deg:.2f}°")
    click.echo(f"Reprojection error (RMS): {cal.rms_px:.3f} px")
    click.echo(f"Saved calibration {cal.id} in {path}; new scans use it.")


@hal_cli.command("mock-object")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def mock_object(out: Path) -> None:
    """Write the mock rig's true object mesh (binary glTF, Z up, metres, object frame)."""
    from hal.mock.scene import write_object_glb

    write_object_glb(out)
    click.echo(f"Wrote the mock object's mesh to {out}")
