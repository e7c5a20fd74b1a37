"""`scanner doctor [--repair]`: check database against disk, stale scans and free space
(the checks live in scanner_app/station/doctor.py). Exit code 1 while problems remain."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext


@click.command("doctor", help="Check database against disk, stale scans and free space.")
@click.option("--repair", is_flag=True,
              help="Fix what is safe to fix: create missing folders, recount totals, mark "
                   "stale scans interrupted, remove leftovers of deleted sessions. Never "
                   "deletes images.")
@with_appcontext
def doctor(repair: bool) -> None:
    from scanner_app.platform.errors import StationError
    from scanner_app.station.doctor import run_doctor
    from scanner_app.station.health import require_migrated

    try:
        require_migrated()
    except StationError as exc:
        raise click.ClickException(exc.message) from None
    report = run_doctor(repair=repair)
    for finding in report.findings:
        click.echo(f"{finding.label:>7}  {finding.message}")
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)
