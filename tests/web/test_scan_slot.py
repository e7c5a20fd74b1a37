"""The dashboard's scan slot notices scans it did not start (the start button, the API):
while nothing is active it asks slowly (every 3 s, only while the tab is visible) and gets
204 until a scan is queued, running or paused; then it answers the slot following that scan,
whose progress polls every second; once the scan is finished the slot keeps it in view,
without polling the progress, and watches slowly again."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from scanner_app.models import Scan
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.sessions import service as session_service

HX = {"HX-Request": "true"}
# Hidden tabs: static/station.js holds data-poll requests (htmx filters need eval).
SLOW = 'hx-trigger="every 3s, visibilitychange from:document" data-poll'
FAST = 'hx-trigger="every 1s"'
WATCH_URL = "/scans/slot?watch=1"


def _session(app, name: str = "Trial") -> int:
    with app.app_context():
        return session_service.create_manual_session(name, make_current=True).id


def _scan(app, session_id: int, status: str, captured: int = 3, planned: int = 12) -> int:
    """A Scan row as a worker leaves it (an active one with a fresh heartbeat: alive)."""
    with app.app_context():
        now = utcnow()
        scan = Scan(session_id=session_id, status=status, profile="quick", source="button",
                    frames_planned=planned, frames_captured=captured, current_angle=90.0,
                    heartbeat_at=now, started_at=now,
                    finished_at=None if status in ("queued", "running", "paused") else now)
        db.session.add(scan)
        db.session.commit()
        return scan.id


def _slot_tag(html: str) -> str:
    """The slot's opening tag: its own trigger, URL and swap."""
    match = re.search(r'<div id="scan-slot"[^>]*>', html)
    assert match, f"no scan slot in:\n{html}"
    return match.group(0)


def _progress_tag(html: str) -> str:
    match = re.search(r'<section id="scan-progress"[^>]*>', html)
    assert match, f"no progress panel in:\n{html}"
    return match.group(0)


def _get_slot(client, url: str, trigger: str | None = None) -> str:
    """The slot's answer; `trigger`: the HX-Trigger it must carry (None: none)."""
    answer = client.get(url, headers=HX)
    assert answer.status_code == 200, answer.data
    assert answer.headers.get("HX-Trigger") == trigger
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="scan-slot"')  # the whole slot, for outerHTML
    return html


def test_idle_dashboard_slot_watches_slowly_while_visible(browser):
    html = browser.get("/").get_data(as_text=True)
    slot = _slot_tag(html)
    assert f'hx-get="{WATCH_URL}&amp;after=0"' in slot  # no scan yet: any newer one counts
    assert SLOW in slot and 'hx-swap="outerHTML"' in slot
    assert "visibilitychange from:document" in slot  # back to the tab: ask at once
    # Its own answer announces a scan it found; listening too would make it ask again.
    assert "scan-changed" not in slot
    assert 'data-slot="watching"' in slot
    progress = _progress_tag(html)
    assert 'data-status="idle"' in progress and "hx-trigger" not in progress
    # The start form follows the slot (CSS hides it while the slot shows a live scan).
    assert html.index('id="scan-slot"') < html.index('class="start-scan"')


def test_idle_slot_answers_itself_with_the_slow_trigger(browser):
    html = _get_slot(browser, "/scans/slot")
    assert SLOW in _slot_tag(html) and 'data-status="idle"' in html
    assert "every 1s" not in html


def test_watching_poll_with_nothing_active_is_204(web_app, browser):
    answer = browser.get(WATCH_URL, headers=HX)
    assert answer.status_code == 204 and answer.data == b""
    # A finished scan is nothing new to follow either.
    _scan(web_app, _session(web_app), "completed", captured=12)
    answer = browser.get(WATCH_URL, headers=HX)
    assert answer.status_code == 204 and answer.data == b""


def test_watching_poll_reads_one_row_of_scans(web_app, browser):
    """The 3-second check stays cheap: one query on the scans table, nothing rendered."""
    _scan(web_app, _session(web_app), "completed", captured=12)
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with web_app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        assert browser.get(WATCH_URL, headers=HX).status_code == 204
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    on_scans = [s for s in statements if re.search(r"\bFROM scans\b", s)]
    assert len(on_scans) == 1, statements
    assert "status IN" in on_scans[0]  # the partial unique index's condition


@pytest.mark.parametrize("status", ["queued", "running", "paused"])
def test_slot_follows_a_scan_started_elsewhere(web_app, browser, status):
    scan_id = _scan(web_app, _session(web_app), status, captured=5, planned=12)
    # Found while watching: the other panels (the current session) are told once.
    html = _get_slot(browser, WATCH_URL, trigger="scan-changed")
    slot = _slot_tag(html)
    # The slot itself stops its slow poll; it asks again only when the scan changes.
    assert "every" not in slot and 'hx-trigger="scan-changed from:body"' in slot
    assert f'hx-get="/scans/slot?last={scan_id}"' in slot
    assert 'data-slot="following"' in slot
    progress = _progress_tag(html)
    assert f'hx-get="/scans/{scan_id}/progress" {FAST}' in progress
    assert 'hx-swap="outerHTML"' in progress and f'data-status="{status}"' in progress
    assert "5 / 12" in html
    assert html.count("hx-trigger=") == 2  # one timer (the progress's) and one event
    # What the following slot asks on "scan-changed" does not say it again (no loop).
    again = _get_slot(browser, f"/scans/slot?last={scan_id}", trigger=None)
    assert 'data-slot="following"' in _slot_tag(again)
    # A freshly loaded dashboard shows the same.
    page = browser.get("/").get_data(as_text=True)
    assert 'data-slot="following"' in _slot_tag(page)
    assert FAST in _progress_tag(page)


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "interrupted"])
def test_finished_scan_stays_in_view_without_polling(web_app, browser, status):
    scan_id = _scan(web_app, _session(web_app), status, captured=12, planned=12)
    # What the following slot asks once its scan said "scan-changed" (ended).
    html = _get_slot(browser, f"/scans/slot?last={scan_id}")
    progress = _progress_tag(html)
    assert f'data-status="{status}"' in progress and f'data-scan-id="{scan_id}"' in progress
    assert "hx-trigger" not in progress and "hx-get" not in progress
    assert f"/scans/{scan_id}/progress" not in html
    assert "12 / 12" in html
    # ...and the slot goes back to watching slowly for the next scan.
    slot = _slot_tag(html)
    assert SLOW in slot and f'hx-get="{WATCH_URL}&amp;after={scan_id}"' in slot
    assert 'data-slot="watching"' in slot


def test_a_new_active_scan_wins_over_the_one_shown(web_app, browser):
    session_id = _session(web_app)
    old = _scan(web_app, session_id, "completed", captured=12)
    new = _scan(web_app, session_id, "running", captured=1)
    html = _get_slot(browser, f"/scans/slot?last={old}")
    assert f'data-scan-id="{new}"' in _progress_tag(html)
    assert FAST in html


def test_a_vanished_scan_leaves_the_idle_slot(browser):
    html = _get_slot(browser, "/scans/slot?last=999")
    assert 'data-status="idle"' in _progress_tag(html) and SLOW in _slot_tag(html)


def test_bad_scan_id_is_a_sentence(browser):
    answer = browser.get("/scans/slot?last=abc", headers=HX)
    assert answer.status_code == 400
    assert b"The scan must be a whole number" in answer.data
    assert answer.data.lstrip().startswith(b'<div class="error"')


def test_slot_without_htmx_goes_to_the_dashboard(browser):
    answer = browser.get("/scans/slot")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_slot_needs_a_login(web_app):
    """A dashboard left open after signing out is sent to the login page by its next poll."""
    answer = web_app.test_client().get(WATCH_URL, headers=HX)
    assert answer.status_code == 401 and b"scan-slot" not in answer.data
    assert answer.headers["HX-Redirect"].startswith("/login?next=")
