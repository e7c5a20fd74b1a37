"""The station page (/station): the rig (its last known state and position, calibration),
the workers, Redis, database and disk (the health checks), the Pi's CPU temperature and
throttling, versions, and the ways on: rig controls, logins and keys (admins), the job
queues. It reads files and asks Redis; it never touches hardware."""

from __future__ import annotations

from flask import Blueprint

from scanner_app.config import current_settings
from scanner_app.platform.web.render import render
from scanner_app.rig import service as rig
from scanner_app.scans import service as scans
from scanner_app.station import station_page_info as info
from scanner_app.station.health import run_checks

bp = Blueprint("station_page", __name__)

CHECK_NAMES = {"database": "Database", "redis": "Job queue (Redis)", "worker": "Workers",
               "disk": "Free disk space", "rig": "Rig lock"}


def page_context() -> dict:
    settings = current_settings()
    calibration, why_not = scans.current_rig_calibration()
    return {
        "driver": settings.hal.driver,
        "rig": rig.rig_status(),
        "position": info.position_file(settings),
        "calibration": calibration, "why_not": why_not,
        "health": run_checks(settings), "check_names": CHECK_NAMES,
        "temperature": info.cpu_temperature(),
        "throttling": info.throttling(),
        "versions": info.versions(),
        "data_dir": settings.data_dir,
    }


@bp.get("/station")
def index() -> str:
    return render("station", "station", **page_context())
