"""The scan page's 3D model panel: the scan page loads it with hx-get; it shows the model in
<model-viewer> once built, follows a running build (polling itself every 2 s, stopping once
it ends), and has the button that starts (or restarts) a build."""

from __future__ import annotations

from flask import Blueprint, url_for
from werkzeug.wrappers import Response

from scanner_app.models import ReconstructionStatus, ScanStatus
from scanner_app.platform.web.forms import form_answer
from scanner_app.platform.web.render import render
from scanner_app.reconstruction import service
from scanner_app.reconstruction.spin import spin_rows
from scanner_app.scans.service import get_scan

bp = Blueprint("reconstruction", __name__, url_prefix="/scans/<int:scan_id>/model")


def _context(scan_id: int) -> dict:
    scan = get_scan(scan_id)
    row = service.latest_for_scan(scan.id)
    data = service.reconstruction_json(row) if row is not None else None
    return {"scan": scan, "reconstruction": row, "data": data,
            "can_start": scan.status is ScanStatus.COMPLETED
            and (row is None or not row.status.is_active),
            "live": row is not None and row.status.is_active}


@bp.get("")
def panel(scan_id: int) -> str:
    return render("reconstruction", "model", partial="model", **_context(scan_id))


@bp.get("/spin")
def spin(scan_id: int) -> str:
    """The drag-to-turn spin of the scan's frames (loaded once by the scan page)."""
    scan = get_scan(scan_id)
    latest = service.latest_for_scan(scan.id)
    return render("reconstruction", "spin", partial="spin", scan=scan, rows=spin_rows(scan.id),
                  has_model=latest is not None
                  and latest.status is ReconstructionStatus.COMPLETED)


@bp.post("")
def start(scan_id: int) -> str | Response:
    service.start_reconstruction(scan_id)
    return form_answer(url_for("scans.show", scan_id=scan_id),
                       lambda: render("reconstruction", "model", partial="model",
                                      **_context(scan_id)))


@bp.post("/cancel")
def cancel(scan_id: int) -> str | Response:
    row = service.latest_for_scan(scan_id)
    if row is not None:
        service.cancel_reconstruction(row.id)
    return form_answer(url_for("scans.show", scan_id=scan_id),
                       lambda: render("reconstruction", "model", partial="model",
                                      **_context(scan_id)))
