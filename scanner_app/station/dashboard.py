"""The dashboard: where new work goes, the scan form and the scan slot (the live progress
of whatever scan is active, however it was started; scanner_app/scans/views.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from scanner_app.platform.web.forms import form_answer, optional_int
from scanner_app.platform.web.htmx import is_htmx
from scanner_app.platform.web.kept_html import (
    for_anyone,
    render_for_anyone,
    render_page_for_anyone,
    with_askers_csrf,
)
from scanner_app.platform.web.layout import init_layout
from scanner_app.platform.web.render import render
from scanner_app.platform.web.response_cache import StampedCache
from scanner_app.scans import service as scans
from scanner_app.sessions import service as sessions

bp = Blueprint("dashboard", __name__)
RECENT_SESSIONS = 5
init_layout(bp)


def current_context() -> dict:
    """The current session and a picker of the active sessions that could become current:
    the newest few, and a search box for the others (not every session as an <option>)."""
    mode, current = sessions.current_session()
    return {"mode": mode, "current": current,
            "picker": sessions.picker_context("current", current=current),
            # A station runs for years: the newest few, and a search for the rest (issue 15).
            "recent": sessions.page_sessions(1, RECENT_SESSIONS).sessions}


# The current-session card shows the sessions table and which session is current
# (station_state), both under the sessions-changed stamp, and today's date (which auto session
# is today's): kept per (station, day) under that stamp (issue 15). It holds no one's data but
# its forms' CSRF token, rendered as a placeholder and replaced per request with the asker's.
CURRENT_CARDS: StampedCache[str] = StampedCache(size=8)


def _render_current_card() -> str:
    return render_for_anyone("station/partials/_current.html", **current_context())


def _kept(cache: StampedCache[str], key: tuple, build: Callable[[], str]) -> Markup:
    """`build()`'s HTML kept in `cache` under the stamp, with the asker's CSRF token."""
    return with_askers_csrf(sessions.kept_under_stamp(cache, key, build))


def current_card_html() -> Markup:
    """The current-session card of the dashboard, with the asker's CSRF token."""
    return _kept(CURRENT_CARDS, (sessions.station_today(),), _render_current_card)


# The scan form shows the profiles (config files, scan_profiles) and the default one
# (station_settings), both under the same stamp: kept per station likewise.
START_FORMS: StampedCache[str] = StampedCache(size=8)


def _render_start_form() -> str:
    return render_for_anyone("scans/partials/_start_form.html", **scan_form_context())


def start_form_html() -> Markup:
    """The dashboard's scan form, with the asker's CSRF token."""
    return _kept(START_FORMS, (), _render_start_form)


def scan_form_context() -> dict:
    # The settings page's profiles (database over config/scanner.toml) and default.
    effective = scans.effective_profiles()
    profiles = sorted(effective.values(), key=lambda p: (p.frames, p.name))
    return {"profiles": profiles,
            "default_profile": scans.default_profile_name(profiles=effective)}


# The whole page is its kept parts (the cards above and the scans slice's scan card) in the
# layout, which shows who asks (signed in, admin) and nothing else of theirs: kept per
# (station, day, person) under the stamp, unless a part changes with time (a running scan).
PAGES: StampedCache[tuple[str, bool]] = StampedCache(size=32)


def _render_page() -> tuple[str, bool]:
    # The scan card is the scans slice's: its template global `scan_card()` renders it
    # (templates/station/index.html), so this page imports none of its views.
    with for_anyone():
        return render_page_for_anyone("station/index.html", current_card=current_card_html(),
                                      start_form=start_form_html())


@bp.get("/")
def index() -> str:
    person = current_user if current_user.is_authenticated else None
    key = (sessions.station_today(), person and person.get_id(), person and person.is_admin,
           request.script_root)  # its links: one deployment, one root, but never mixed
    built: list[bool] = []
    html, keepable = sessions.kept_under_stamp(
        PAGES, key, lambda: built.append(True) or _render_page())
    if not keepable and not built:  # kept as "not keepable" under this stamp: render anew
        html, _ = _render_page()
    return with_askers_csrf(html)


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
