"""The dashboard: where new work goes, the scan form and the scan slot (the live progress
of whatever scan is active, however it was started; scanner_app/scans/views.py)."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from werkzeug.wrappers import Response

from scanner_app.platform.web.forms import form_answer, optional_int
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.layout import init_layout
from scanner_app.platform.web.render import render
from scanner_app.scans import service as scans
from scanner_app.sessions import service as sessions

bp = Blueprint("dashboard", __name__)
init_layout(bp)


def current_context() -> dict:
    """The current session and a picker of the active sessions that could become current:
    the newest few, and a search box for the others (not every session as an <option>)."""
    mode, current = sessions.current_session()
    return {"mode": mode, "current": current,
            "picker": sessions.picker_context("current", current=current)}


def scan_form_context() -> dict:
    # The settings page's profiles (database over config/scanner.toml) and default.
    effective = scans.effective_profiles()
    profiles = sorted(effective.values(), key=lambda p: (p.frames, p.name))
    return {"profiles": profiles,
            "default_profile": scans.default_profile_name(profiles=effective)}


@bp.get("/")
def index() -> str:
    # The scan card is the scans slice's: its template global `scan_panel()` gives the
    # card's context (templates/station/index.html), so this page imports none of its views.
    return render("station", "index", **current_context(), **scan_form_context())


@bp.get("/current")
def current_card() -> str | Response:
    """The current-session panel alone; the dashboard asks for it when a scan starts or ends."""
    if not is_htmx():
        return redirect(url_for("dashboard.index"))
    return render("station", "index", partial="current", **current_context())


@bp.post("/current")
def make_current() -> str | Response:
    """Make a session current, or (blank session_id) go back to today's auto session."""
    sessions.set_current_session(optional_int("session_id", "The session"))
    return form_answer(url_for("dashboard.index"),
                lambda: render("station", "index", partial="current", **current_context()))
