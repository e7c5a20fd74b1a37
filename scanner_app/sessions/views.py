"""Session pages: the list with totals, one session with its scans, uploads and captures,
and the actions on it (rename, complete, make current, merge, delete)."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.forms import form_answer, hx_redirect, optional_int
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.render import render
from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.sessions import service as sessions
from scanner_app.sessions.listing import name_key
from scanner_app.sessions.totals import MAX_AGE_SECONDS

bp = Blueprint("sessions", __name__, url_prefix="/sessions")


SESSIONS_PER_PAGE = 50


def _list_context(page: int = 1, query: str = "") -> dict:
    found = sessions.page_sessions(page, SESSIONS_PER_PAGE, query)
    mode, current = sessions.current_session()
    return {"sessions": found.sessions, "totals": found.totals, "shown": found.shown,
            "query": found.query, "mode": mode,
            "current_id": current.id if current and mode == "manual" else None}


# The list partial (htmx: paging, searching) shows the sessions table and which session is
# current, both under the sessions-changed stamp, and nothing of who asks: kept per (station,
# page, search) like the API's list (issue 15). At most 32 pages of about 35 KB.
LIST_PARTIALS: StampedCache[str] = StampedCache(size=32, max_age=MAX_AGE_SECONDS)


@bp.get("")
def index() -> str:
    """The sessions, newest first, a page at a time; `q` keeps those whose name holds it."""
    page = optional_int("page", "The page") or 1
    query = request.args.get("q", "")
    if is_htmx():
        return sessions.kept_under_stamp(
            LIST_PARTIALS, (page, name_key(query)),
            lambda: render("sessions", "index", partial="list", **_list_context(page, query)))
    return render("sessions", "index", partial="list", **_list_context(page, query))


@bp.get("/picker")
def picker() -> str | Response:
    """The options of a session picker (at most PICKER_LIMIT), newest first, whose name holds
    `q`: what the dashboard, merge and upload pickers ask for as someone types."""
    if not is_htmx():
        return redirect(url_for("sessions.index", q=request.args.get("q") or None))
    _mode, current = sessions.current_session()
    return render("sessions", "index", partial="picker_options", picker=sessions.picker_context(
        request.args.get("purpose", ""), request.args.get("q", ""),
        optional_int("session_id", "The session"), current=current))




@bp.post("")
def create() -> str | Response:
    session = sessions.create_manual_session(
        request.form.get("name", ""), make_current=bool(request.form.get("make_current"))
    )
    return form_answer(url_for("sessions.show", session_id=session.id),
                lambda: render("sessions", "index", partial="list", **_list_context(),
                               created_id=session.id))


def _summary_context(session_id: int) -> dict:
    session = sessions.get_session(session_id)
    mode, current = sessions.current_session()
    return {
        "session": session,
        "is_current": current is not None and current.id == session.id,
        "current_mode": mode,
        "merge_picker": sessions.picker_context("merge", session_id=session.id),
    }


@bp.get("/<int:session_id>")
def show(session_id: int) -> str:
    # Scans, uploads and captures are other slices' partials, loaded by the page (hx-get);
    # the captures grid opens on the filter and page asked for here.
    page = request.args.get("page", "")
    return render("sessions", "session", **_summary_context(session_id),
                  valid_filter=request.args.get("valid", ""),
                  captures_page=int(page) if page.isascii() and page.isdigit() else 1)


@bp.get("/<int:session_id>/counters")
def counters(session_id: int) -> str:
    session = sessions.get_session(session_id)
    if not is_htmx():
        return show(session_id)
    return render("sessions", "session", partial="session_counters", session=session)


def _summary(session_id: int) -> str | Response:
    return form_answer(url_for("sessions.show", session_id=session_id),
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
