"""A session's captures grid (filter and page) for the session page, which loads it with
hx-get and which reloads itself when the session's scans or uploads settle."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from scanner_app.captures.service import SOURCES, list_captures
from scanner_app.platform.errors import BadRequest
from scanner_app.platform.web.forms import optional_int
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.render import render
from scanner_app.sessions import service as sessions

bp = Blueprint("captures", __name__, url_prefix="/sessions/<int:session_id>")

CAPTURES_PER_PAGE = 48
_VALID_FILTERS = {"": None, "valid": True, "invalid": False}


@bp.get("/captures")
def grid(session_id: int) -> str | Response:
    sessions.get_session(session_id)
    wanted = request.args.get("valid", "")
    source = request.args.get("source", "")  # "scans", "uploads" or "" (both)
    if not is_htmx():
        return redirect(url_for("sessions.show", session_id=session_id, valid=wanted or None,
                                source=source or None))
    if wanted not in _VALID_FILTERS:
        raise BadRequest("Show 'valid', 'invalid' or all captures.")
    if source and source not in SOURCES:
        raise BadRequest("Show the captures of 'scans', of 'uploads', or of both.")
    page = optional_int("page", "The page") or 1
    captures, page, pages = list_captures(
        session_id, valid=_VALID_FILTERS[wanted], page=page, per_page=CAPTURES_PER_PAGE,
        source=source or None,
    )
    # Not "page": that is render()'s own argument.
    return render("captures", "grid", partial="grid", session_id=session_id, captures=captures,
                  captures_page=page, captures_pages=pages, valid_filter=wanted,
                  source=source)
