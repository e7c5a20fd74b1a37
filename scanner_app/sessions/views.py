"""Session pages: the list with totals, one session with its scans, uploads and captures,
and the actions on it (rename, complete, make current, merge, delete)."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from scanner_app.captures.service import list_captures
from scanner_app.models import SCAN_ACTIVE_STATUSES
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.forms import done, hx_redirect, optional_int
from scanner_app.platform.web.render import HtmlWithHeaders, render
from scanner_app.scans import service as scan_service
from scanner_app.sessions import service as sessions
from scanner_app.uploads.views import uploads_context

bp = Blueprint("sessions", __name__, url_prefix="/sessions")

CAPTURES_PER_PAGE = 48
_VALID_FILTERS = {"": None, "valid": True, "invalid": False}
# Sent with the last answer of a polling list (no scan live / no upload processing any more):
# the session's counters and captures grid then refresh themselves, once.
SCANS_SETTLED = {"HX-Trigger": "scan-changed"}
UPLOADS_SETTLED = {"HX-Trigger": "uploads-changed"}


def _list_context() -> dict:
    all_sessions, totals = sessions.list_sessions()
    mode, current = sessions.current_session()
    return {"sessions": all_sessions, "totals": totals, "mode": mode,
            "current_id": current.id if current and mode == "manual" else None}


@bp.get("")
def index() -> str:
    return render("sessions", "index", partial="list", **_list_context())


@bp.post("")
def create() -> str | Response:
    session = sessions.create_manual_session(
        request.form.get("name", ""), make_current=bool(request.form.get("make_current"))
    )
    return done(url_for("sessions.show", session_id=session.id),
                lambda: render("sessions", "index", partial="list", **_list_context(),
                               created_id=session.id))


def _summary_context(session_id: int) -> dict:
    session = sessions.get_session(session_id)
    mode, current = sessions.current_session()
    all_sessions, _totals = sessions.list_sessions()
    return {
        "session": session,
        "is_current": current is not None and current.id == session.id,
        "current_mode": mode,
        "merge_targets": [s for s in all_sessions if s.id != session.id],
    }


def _captures_context(session_id: int) -> dict:
    wanted = request.args.get("valid", "")
    if wanted not in _VALID_FILTERS:
        raise BadRequest("Show 'valid', 'invalid' or all captures.")
    page = optional_int("page", "The page") or 1
    captures, page, pages = list_captures(
        session_id, valid=_VALID_FILTERS[wanted], page=page, per_page=CAPTURES_PER_PAGE
    )
    # Not "page": that is render()'s own argument.
    return {"captures": captures, "captures_page": page, "captures_pages": pages,
            "valid_filter": wanted}


def _scans_context(session_id: int) -> dict:
    return {"scans": scan_service.list_scans(session_id)}


@bp.get("/<int:session_id>")
def show(session_id: int) -> str:
    context = _summary_context(session_id)
    return render(
        "sessions", "session",
        **context,
        **_scans_context(session_id),
        **uploads_context(session_id),
        **_captures_context(session_id),
    )


@bp.get("/<int:session_id>/captures")
def captures(session_id: int) -> str:
    sessions.get_session(session_id)
    if not request.headers.get("HX-Request"):
        return show(session_id)
    return render("sessions", "session", partial="captures", session_id=session_id,
                  **_captures_context(session_id))


@bp.get("/<int:session_id>/counters")
def counters(session_id: int) -> str:
    session = sessions.get_session(session_id)
    if not request.headers.get("HX-Request"):
        return show(session_id)
    return render("sessions", "session", partial="session_counters", session=session)


@bp.get("/<int:session_id>/uploads")
def uploads(session_id: int) -> str | HtmlWithHeaders:
    sessions.get_session(session_id)
    if not request.headers.get("HX-Request"):
        return show(session_id)
    context = uploads_context(session_id)
    html = render("uploads", "index", partial="list", **context)
    return (html, 200, UPLOADS_SETTLED) if not context["processing"] else html


@bp.get("/<int:session_id>/scans")
def scans(session_id: int) -> str | HtmlWithHeaders:
    sessions.get_session(session_id)
    if not request.headers.get("HX-Request"):
        return show(session_id)
    context = _scans_context(session_id)
    html = render("sessions", "session", partial="scans", session_id=session_id, **context)
    live = any(scan.status in SCAN_ACTIVE_STATUSES for scan in context["scans"])
    return html if live else (html, 200, SCANS_SETTLED)


def _summary(session_id: int) -> str | Response:
    return done(url_for("sessions.show", session_id=session_id),
                lambda: render("sessions", "session", partial="summary",
                               **_summary_context(session_id)))


@bp.post("/<int:session_id>/rename")
def rename(session_id: int) -> str | Response:
    sessions.update_session(session_id, {"name": request.form.get("name", "")})
    return _summary(session_id)


@bp.post("/<int:session_id>/status")
def set_status(session_id: int) -> str | Response:
    sessions.update_session(session_id, {"status": request.form.get("status", "")})
    return _summary(session_id)


@bp.post("/<int:session_id>/current")
def make_current(session_id: int) -> str | Response:
    """Make this session current, or with `today` set, go back to today's auto session."""
    sessions.set_current_session(None if request.form.get("today") else session_id)
    return _summary(session_id)


@bp.post("/<int:session_id>/merge")
def merge(session_id: int) -> Response:
    into = optional_int("into", "The session to merge into")
    if into is None:
        raise BadRequest("Pick the session to merge this one into.", code="invalid_form")
    target = sessions.merge_sessions(session_id, into)
    return hx_redirect(url_for("sessions.show", session_id=target.id))


@bp.post("/<int:session_id>/delete")
def delete(session_id: int) -> Response:
    sessions.delete_session(session_id)
    return hx_redirect(url_for("sessions.index"))
