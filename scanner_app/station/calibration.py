"""The calibration page: the rig's current calibration (or why there is none), a Calibrate
button that queues the calibration job on the `hardware` queue, and the run's progress, which
polls itself while the run waits or works. The rig itself is only ever driven by the worker
(scans/calibration_job.py); this page reaches it through the scans service."""

from __future__ import annotations

from flask import Blueprint, url_for
from werkzeug.wrappers import Response

from scanner_app.platform.web.forms import form_answer, optional_int
from scanner_app.platform.web.render import render
from scanner_app.scans import service as scans

bp = Blueprint("calibration", __name__, url_prefix="/calibration")
DEFAULT_VIEWS = 12  # as `scanner hal calibrate`


def run_context() -> dict:
    run = scans.calibration_run()
    return {"run": run, "live": bool(run and run.status.is_active)}


def page_context() -> dict:
    calibration, why_not = scans.current_rig_calibration()
    return {"calibration": calibration, "why_not": why_not, "default_views": DEFAULT_VIEWS,
            **run_context()}


@bp.get("")
def index() -> str:
    return render("station", "calibration", **page_context())


@bp.get("/run")
def run_panel() -> str:
    """The run's progress alone: what the panel polls while the run is under way. A plain
    GET gets the whole page, whose current calibration changes when a run is saved."""
    return render("station", "calibration", partial="calibration_run", **page_context())


@bp.post("")
def start() -> str | Response:
    # The service says which range is allowed; this only reads a whole number.
    views = optional_int("views", "The number of photos", minimum=0, maximum=10_000)
    scans.start_calibration(DEFAULT_VIEWS if views is None else views)
    return form_answer(url_for("calibration.index"),
                       lambda: render("station", "calibration", partial="calibration_run",
                                      **page_context()))
