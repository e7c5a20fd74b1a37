"""Starting a scan from the browser and following it: the progress partial polls itself
while the scan is queued, running or paused, and stops once it is finished."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from scanner_app.models import SCAN_ACTIVE_STATUSES, Scan
from scanner_app.services import scans as scan_service
from scanner_app.web.forms import done, optional_int
from scanner_app.web.render import render

bp = Blueprint("scans", __name__, url_prefix="/scans")

MAX_FRAMES = scan_service.MAX_FRAMES


def progress_context(scan: Scan | None) -> dict:
    """What templates/scans/partials/_progress.html needs, for a scan or for none."""
    if scan is None:
        return {"scan": None, "progress": None, "live": False}
    return {
        "scan": scan,
        "progress": scan_service.scan_progress(scan),
        "live": scan.status in SCAN_ACTIVE_STATUSES,
    }


# Sent with the progress partial when a scan starts or ends, so other panels of the page
# (the current session's counters) refresh themselves once, without polling.
SCAN_CHANGED = {"HX-Trigger": "scan-changed"}


def _progress(scan_id: int):
    scan = scan_service.get_scan(scan_id)
    html = render("scans", "scan", partial="progress", **progress_context(scan))
    if request.headers.get("HX-Request") and scan.status not in SCAN_ACTIVE_STATUSES:
        return html, 200, SCAN_CHANGED
    return html


@bp.post("")
def start():
    profile = (request.form.get("profile") or "").strip() or None
    frames = optional_int("frames", "The number of frames", maximum=MAX_FRAMES)
    session_id = optional_int("session_id", "The session")
    scan = scan_service.start_scan(session_id, profile=profile, frames=frames, source="web")
    return done(url_for("scans.show", scan_id=scan.id),
                lambda: (render("scans", "scan", partial="progress", **progress_context(scan)),
                         200, SCAN_CHANGED))


@bp.get("/<int:scan_id>")
def show(scan_id: int):
    return _progress(scan_id)


@bp.get("/<int:scan_id>/progress")
def progress(scan_id: int):
    return _progress(scan_id)


def _control(scan_id: int, action: str):
    getattr(scan_service, f"{action}_scan")(scan_id)
    return done(url_for("scans.show", scan_id=scan_id), lambda: _progress(scan_id))


@bp.post("/<int:scan_id>/pause")
def pause(scan_id: int):
    return _control(scan_id, "pause")


@bp.post("/<int:scan_id>/resume")
def resume(scan_id: int):
    return _control(scan_id, "resume")


@bp.post("/<int:scan_id>/cancel")
def cancel(scan_id: int):
    return _control(scan_id, "cancel")
