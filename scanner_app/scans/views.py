"""Starting a scan from the browser and following it: the progress partial polls itself
while the scan is queued, running or paused, and stops once it is finished. The dashboard's
scan slot around it watches for scans started elsewhere (the start button, the API)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, redirect, render_template, request, send_file, url_for
from markupsafe import Markup
from sqlalchemy import case, func, or_, select
from werkzeug.wrappers import Response

from scanner_app.models import SCAN_ACTIVE, Scan, ScanStatus
from scanner_app.platform.errors import BadRequest, NotFound
from scanner_app.platform.extensions import db
from scanner_app.platform.web.forms import form_answer, optional_int
from scanner_app.platform.web.htmx import SCAN_CHANGED, is_htmx, trigger
from scanner_app.platform.web.kept_html import (
    changes_with_time,
    render_for_anyone,
    with_askers_csrf,
)
from scanner_app.platform.web.render import HtmlWithHeaders, render
from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.platform.web.security import FILE_CSP
from scanner_app.scans import review
from scanner_app.scans import service as scan_service
from scanner_app.sessions.service import get_session, kept_under_stamp

bp = Blueprint("scans", __name__, url_prefix="/scans")
# The session page's scans list, which that page loads with hx-get (it imports nothing of ours).
session_bp = Blueprint("session_scans", __name__, url_prefix="/sessions/<int:session_id>")

MAX_FRAMES = scan_service.MAX_FRAMES

def progress_context(scan: Scan | None) -> dict:
    """What templates/scans/partials/_progress.html needs, for a scan or for none.
    templates/scans/partials/_slot.html needs the same: `live` says whether it follows."""
    if scan is None:
        return {"scan": None, "progress": None, "live": False, "after": _newest_scan_id()}
    return {
        "scan": scan,
        "progress": scan_service.scan_progress(scan),
        "live": scan.status.is_active,
        # A watching slot asks for any scan newer than this one: one that started and ended
        # between two of its polls is shown too, not missed.
        "after": scan.id,
    }


def _newest_scan_id() -> int:
    return db.session.scalar(select(func.max(Scan.id))) or 0


def _watched(after: int | None) -> Scan | None:
    """The watching slot's one query: the active scan if any, else the newest scan with an
    id above `after` (ids never repeat: AUTOINCREMENT), else None."""
    active = Scan.status.in_(SCAN_ACTIVE)
    wanted = active if after is None else or_(active, Scan.id > after)
    return db.session.scalar(select(Scan).where(wanted)
                             .order_by(case((active, 0), else_=1), Scan.id.desc()).limit(1))


@bp.app_template_global("scan_panel")
def scan_panel() -> dict:
    """The context of the scan card (slot and progress) for pages that show it, such as the
    dashboard: `{% set panel = scan_panel() %}` then include the scans partials.
    With nothing active, the newest interrupted scan is shown (with its Resume), so a scan
    the worker dropped is not invisible; the slot still watches for any newer scan."""
    active = scan_service.active_scan()
    if active is None:
        dropped = db.session.scalar(select(Scan).where(Scan.status == ScanStatus.INTERRUPTED)
                                    .order_by(Scan.id.desc()).limit(1))
        if dropped is not None:
            return {**progress_context(dropped), "after": _newest_scan_id()}
    return progress_context(active)


# The dashboard's scan card while no scan is active (idle, or the newest interrupted scan):
# nothing in it changes with time, only with the scans table, whose writes change the stamp
# (sessions/totals.py). So it is kept per station under that stamp (issue 15); while a scan
# is active the card shows its heartbeat-dependent state and is built on every request (its
# progress polls itself anyway). "" is kept for "a scan was active under this stamp".
SCAN_CARDS: StampedCache[str] = StampedCache(size=8)


def _idle_card() -> str:
    panel = scan_panel()
    if panel["live"]:
        return ""
    return render_for_anyone("scans/partials/_slot.html", **panel)


@bp.app_template_global("scan_card")
def scan_card() -> Markup:
    """The dashboard's scan card (slot and progress), with the asker's CSRF token."""
    kept = kept_under_stamp(SCAN_CARDS, ("scan-card",), _idle_card)
    if kept:
        return with_askers_csrf(kept)
    changes_with_time()  # nor may the page around it be kept
    return Markup(render_template("scans/partials/_slot.html", **scan_panel()))  # noqa: S704


# Sent with the progress partial when a scan starts or ends, so other panels of the page
# (the current session's counters, the dashboard's scan slot) refresh themselves once,
# without polling.
ANNOUNCE_CHANGE = trigger(SCAN_CHANGED)


def _progress(scan_id: int) -> str | HtmlWithHeaders:
    scan = scan_service.get_scan(scan_id)
    html = render("scans", "scan", partial="progress", **progress_context(scan))
    if is_htmx() and not scan.status.is_active:
        return html, 200, ANNOUNCE_CHANGE
    return html


@bp.post("")
def start() -> HtmlWithHeaders | Response:
    profile = (request.form.get("profile") or "").strip() or None
    frames = optional_int("frames", "The number of frames", maximum=MAX_FRAMES)
    session_id = optional_int("session_id", "The session")
    scan = scan_service.start_scan(session_id, profile=profile, frames=frames, source="web")
    return form_answer(url_for("scans.show", scan_id=scan.id),
                lambda: (render("scans", "scan", partial="progress", **progress_context(scan)),
                         200, ANNOUNCE_CHANGE))


@bp.get("/slot")
def slot() -> str | tuple[str, int] | HtmlWithHeaders | Response:
    """The dashboard's scan slot (templates/scans/partials/_slot.html).

    Whatever is active (queued, running, paused) is followed: the slot with its progress.
    `?watch=1&after=<id>` is a watching slot's poll: while nothing is active and no scan is
    newer than <id> it gets 204 (htmx swaps nothing, the page keeps what it shows), so the
    check reads one row and renders nothing; once a scan is active, the slot following it
    plus "scan-changed" for the other panels; a newer scan that is already finished (it ran
    between two polls), the slot showing it, plus "scan-changed". `?last=<id>` asks for the
    watching slot that keeps scan <id>, just finished, in view; neither gives the idle
    slot."""
    if not is_htmx():
        return redirect(url_for("dashboard.index"))
    watching = bool(request.args.get("watch"))
    if watching:
        found = _watched(optional_int("after", "The scan", minimum=0))
        if found is None:
            return "", 204
        if not found.status.is_active:
            # Started and finished between two polls: shown, and the other panels (the
            # session's counters) told once.
            html = render("scans", "scan", partial="slot", **progress_context(found))
            return html, 200, ANNOUNCE_CHANGE
    scan = scan_service.active_scan()  # also recovers one whose worker died
    if scan is None and watching:
        return "", 204
    if scan is not None:
        html = render("scans", "scan", partial="slot", **progress_context(scan))
        # Found by watching: a scan started elsewhere, so today's session may be new and its
        # counters will change. (A following slot's own answer never says so: it listens.)
        return (html, 200, ANNOUNCE_CHANGE) if watching else html
    last = optional_int("last", "The scan")
    try:
        scan = scan_service.get_scan(last) if last is not None else None
    except NotFound:
        scan = None  # gone with its session (deleted, merged): nothing left to show
    return render("scans", "scan", partial="slot", **progress_context(scan))


@bp.get("/<int:scan_id>")
def show(scan_id: int) -> str | HtmlWithHeaders:
    if is_htmx():
        return _progress(scan_id)
    scan = scan_service.get_scan(scan_id)
    return render("scans", "scan", **{**progress_context(scan), **_review_context(scan)})


def _valid_filter() -> str:
    wanted = request.args.get("valid", "")
    if wanted not in review.VALID_FILTERS:
        raise BadRequest("Show 'valid', 'invalid' or all frames.")
    return wanted


def _review_context(scan: Scan) -> dict:
    wanted = _valid_filter()
    frames = review.scan_frames(scan, review.VALID_FILTERS[wanted])
    return {"scan": scan, "rings": review.group_by_ring(frames), "frame_count": len(frames),
            "valid_filter": wanted}


@bp.get("/<int:scan_id>/frames")
def frames(scan_id: int) -> str | Response:
    """The review grid (templates/scans/partials/_review.html), filtered by ?valid=."""
    if not is_htmx():
        return redirect(url_for("scans.show", scan_id=scan_id, valid=_valid_filter() or None))
    scan = scan_service.get_scan(scan_id)
    return render("scans", "scan", partial="review", **_review_context(scan))


@bp.get("/<int:scan_id>/frames/<int:capture_id>")
def frame(scan_id: int, capture_id: int) -> str:
    """One frame with its metadata for the lightbox (partial), or as a page of its own.
    Previous/next follow the review's filter."""
    scan = scan_service.get_scan(scan_id)
    capture = review.frame_of(scan, capture_id)
    wanted = _valid_filter()
    before, after = review.neighbours(review.scan_frames(scan, review.VALID_FILTERS[wanted]),
                                      capture)
    return render("scans", "frame", partial="frame", scan=scan, frame=capture,
                  meta=review.frame_metadata(scan, capture), previous=before, next=after,
                  has_mask=review.frame_mask(scan, capture) is not None,
                  needs_preview=review.needs_preview(capture), valid_filter=wanted)


def _send_private(path: Path, mimetype: str) -> Response:
    # As the session's files are served (captures/views.py): private, inert, never sniffed.
    answer = send_file(path, mimetype=mimetype, max_age=3600, conditional=True)
    answer.cache_control.public = False
    answer.cache_control.private = True
    answer.headers["Content-Security-Policy"] = FILE_CSP
    answer.headers["X-Content-Type-Options"] = "nosniff"
    return answer


@bp.get("/<int:scan_id>/frames/<int:capture_id>/preview.jpg")
def preview(scan_id: int, capture_id: int) -> Response:
    """A JPEG of a frame stored in a format browsers do not show (TIFF)."""
    scan = scan_service.get_scan(scan_id)
    return _send_private(review.frame_preview(scan, review.frame_of(scan, capture_id)),
                         "image/jpeg")


@bp.get("/<int:scan_id>/frames/<int:capture_id>/mask.png")
def mask(scan_id: int, capture_id: int) -> Response:
    scan = scan_service.get_scan(scan_id)
    found = review.frame_mask(scan, review.frame_of(scan, capture_id))
    if found is None:
        raise NotFound("This frame has no mask.", code="no_such_mask")
    return _send_private(found, "image/png")


@bp.get("/<int:scan_id>/progress")
def progress(scan_id: int) -> str | HtmlWithHeaders:
    return _progress(scan_id)


def _control(scan_id: int, action: str) -> str | HtmlWithHeaders | Response:
    getattr(scan_service, f"{action}_scan")(scan_id)
    return form_answer(url_for("scans.show", scan_id=scan_id), lambda: _progress(scan_id))


@bp.post("/<int:scan_id>/pause")
def pause(scan_id: int) -> str | HtmlWithHeaders | Response:
    return _control(scan_id, "pause")


@bp.post("/<int:scan_id>/resume")
def resume(scan_id: int) -> str | HtmlWithHeaders | Response:
    return _control(scan_id, "resume")


@bp.post("/<int:scan_id>/cancel")
def cancel(scan_id: int) -> str | HtmlWithHeaders | Response:
    return _control(scan_id, "cancel")




@session_bp.get("/scans")
def of_session(session_id: int) -> str | HtmlWithHeaders | Response:
    """A session's scans (templates/scans/partials/_session_scans.html); polls itself while
    one of them is live."""
    if not is_htmx():
        return redirect(url_for("sessions.show", session_id=session_id))
    scans = scan_service.list_scans(get_session(session_id).id)
    html = render("scans", "scan", partial="session_scans", session_id=session_id, scans=scans)
    live = any(scan.status.is_active for scan in scans)
    # The last answer of the polling list (nothing live any more): the session's counters
    # and captures grid then refresh themselves, once.
    return html if live else (html, 200, ANNOUNCE_CHANGE)
