"""Issue 10, finding 10: a scan that starts and ends between two polls of the idle dashboard
(every 3 s) is shown, and the counters refresh. The watching slot asks for "the active scan,
or any scan newer than the newest I know"; the scan is put in place the way a worker leaves a
finished one, between two polls, so the test does not depend on timing."""

from __future__ import annotations

import re

import pytest

from scanner_app.models import Scan
from scanner_app.platform.clock import utcnow
from scanner_app.platform.extensions import db
from scanner_app.sessions.counters import bump_session_counters
from scanner_app.sessions.resolver import resolve_session
from tests.conftest import build_app
from tests.support import dispose
from tests.web.live_station import SCREENS, live_station, open_page

HX = {"HX-Request": "true"}
REDIS_DB = 8  # a database of the test Redis for this module's station alone


def finished_scan(app, frames: int = 3) -> int:
    """A scan that started and completed between two polls: its row (and the session's
    scans_count) as the worker leaves them."""
    with app.app_context():
        session_id = resolve_session(None)
        now = utcnow()
        scan = Scan(session_id=session_id, status="completed", profile="quick", source="api",
                    frames_planned=frames, frames_captured=frames, heartbeat_at=now,
                    started_at=now, finished_at=now)
        db.session.add(scan)
        db.session.flush()
        bump_session_counters(session_id, scans_count=1)
        db.session.commit()
        return scan.id


def _watch_url(html: str) -> str:
    match = re.search(r'<div id="scan-slot"[^>]*hx-get="([^"]+)"', html)
    assert match, html
    return match.group(1).replace("&amp;", "&")


def test_a_scan_run_between_two_polls_is_shown_and_announced(web_app, browser):
    earlier = finished_scan(web_app)
    page = browser.get("/").get_data(as_text=True)
    watch = _watch_url(page)
    assert watch == f"/scans/slot?watch=1&after={earlier}"  # the newest it knows
    assert browser.get(watch, headers=HX).status_code == 204  # nothing new yet

    short = finished_scan(web_app)
    answer = browser.get(watch, headers=HX)
    assert answer.status_code == 200
    assert answer.headers.get("HX-Trigger") == "scan-changed"  # counters refresh, once
    html = answer.get_data(as_text=True)
    assert f'data-scan-id="{short}"' in html and 'data-status="completed"' in html
    assert 'data-slot="watching"' in html and "3 / 3" in html
    follow_up = _watch_url(html)
    assert follow_up == f"/scans/slot?watch=1&after={short}"
    assert browser.get(follow_up, headers=HX).status_code == 204  # shown once, not again

    # The panel the announcement refreshes counts it.
    card = browser.get("/current", headers=HX).get_data(as_text=True)
    assert re.search(r"Scans</dt>\s*<dd[^>]*>2</dd>", card), card


def test_several_short_scans_between_polls_show_the_newest(web_app, browser):
    watch = _watch_url(browser.get("/").get_data(as_text=True))
    assert watch == "/scans/slot?watch=1&after=0"
    finished_scan(web_app)
    newest = finished_scan(web_app)
    html = browser.get(watch, headers=HX).get_data(as_text=True)
    assert f'data-scan-id="{newest}"' in html


def test_bad_after_is_a_sentence(browser):
    answer = browser.get("/scans/slot?watch=1&after=x", headers=HX)
    assert answer.status_code == 400 and b"The scan must be a whole number from 0." in answer.data


@pytest.fixture(scope="module")
def station(tmp_path_factory, redis_server):
    yield from live_station(tmp_path_factory, redis_server, REDIS_DB, "short-scans")


@pytest.mark.browser
def test_open_dashboard_shows_a_scan_that_ran_between_two_polls(chromium, station):
    from playwright.sync_api import expect

    writer = build_app(station.data_dir)  # the live station's own SQLite file
    context, page, requests, failures = open_page(chromium)
    try:
        page.goto(station.url + "/")
        page.fill("input[name=name]", "admin")  # first run: the first login
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        expect(page).to_have_url(station.url + "/")
        slot, progress = page.locator("#scan-slot"), page.locator("#scan-progress")
        expect(slot).to_have_attribute("data-slot", "watching")
        expect(progress).to_have_attribute("data-status", "idle")
        with page.expect_request(lambda r: "/scans/slot?watch=1&after=0" in r.url,
                                 timeout=10_000):
            pass  # the slow watch is on

        short = finished_scan(writer)
        expect(progress).to_have_attribute("data-scan-id", str(short), timeout=10_000)
        expect(progress).to_have_attribute("data-status", "completed")
        expect(progress).to_contain_text("3 / 3")
        expect(slot).to_have_attribute("data-slot", "watching")
        current = page.locator("#current-session .stats")
        expect(current.locator("div", has_text="Scans").locator("dd")).to_have_text("1")
        # It keeps watching, now for scans newer than this one.
        with page.expect_request(lambda r: f"/scans/slot?watch=1&after={short}" in r.url,
                                 timeout=10_000):
            pass
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "dashboard-short-scan.png"), full_page=True)
        assert not failures, f"JavaScript errors on the page: {failures}"
    finally:
        context.close()
        dispose(writer)
