"""The scan panel: the progress partial polls itself while a scan is queued, running or
paused and renders without its trigger once the scan is finished; the start form and the
Pause/Resume/Cancel buttons show the station's sentences on refusal."""

from __future__ import annotations

import re
import socket

import pytest
import redis

from scanner_app.platform.extensions import db
from tests.web.conftest import HX, add_scan, add_session, make_web_app, sign_in

POLL = 'hx-trigger="every 1s"'
WEB_TEST_REDIS_DB = 5  # not db 0: other tests' workers must never see these jobs


def _progress(browser, scan_id: int) -> str:
    answer = browser.get(f"/scans/{scan_id}/progress", headers=HX)
    assert answer.status_code == 200, answer.data
    return answer.get_data(as_text=True)


@pytest.mark.parametrize("status", ["queued", "running", "paused"])
def test_progress_of_an_active_scan_polls_itself(web_app, browser, status):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), status, captured=5, planned=12,
                       angle=150.0)
    answer = browser.get(f"/scans/{scan_id}/progress", headers=HX)
    assert "HX-Trigger" not in answer.headers
    html = answer.get_data(as_text=True)
    assert POLL in html
    assert f'hx-get="/scans/{scan_id}/progress"' in html
    assert 'hx-swap="outerHTML"' in html
    assert f'data-status="{status}"' in html
    assert "5 / 12" in html and "150.0°" in html
    assert re.search(r'<progress class="bar" max="12" value="5"', html)
    assert (">Pause</button>" in html) == (status != "paused")
    assert (">Resume</button>" in html) == (status == "paused")
    assert ">Cancel</button>" in html


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "interrupted"])
def test_progress_of_a_finished_scan_stops_polling(web_app, browser, status):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), status, captured=12, planned=12)
    answer = browser.get(f"/scans/{scan_id}/progress", headers=HX)
    # The last answer also tells the page to refresh the current session's counters once.
    assert answer.headers["HX-Trigger"] == "scan-changed"
    html = _progress(browser, scan_id)
    assert "hx-trigger" not in html
    assert f"/scans/{scan_id}/progress" not in html  # nothing left to ask for
    assert f'data-status="{status}"' in html
    assert ">Pause</button>" not in html
    assert (">Resume</button>" in html) == (status == "interrupted")


def test_dashboard_shows_the_active_scan_live(web_app, browser):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), "running", captured=3)
    html = browser.get("/").get_data(as_text=True)
    assert 'class="scan-progress is-live"' in html
    assert f'hx-get="/scans/{scan_id}/progress" {POLL}' in html
    # The start form follows the panel, so CSS hides it while the scan is live.
    assert html.index('id="scan-progress"') < html.index('class="start-scan"')


def test_current_session_panel_refreshes_when_a_scan_changes(web_app, browser):
    html = browser.get("/").get_data(as_text=True)
    assert 'hx-get="/current" hx-trigger="scan-changed from:body"' in html
    add_session(web_app, "Later", make_current=True)
    panel = browser.get("/current", headers=HX)
    assert panel.data.lstrip().startswith(b'<section id="current-session"')
    assert b"Later" in panel.data
    assert browser.get("/current").headers["Location"] == "/"


def test_dashboard_without_scan_shows_idle_panel_and_profiles(browser):
    html = browser.get("/").get_data(as_text=True)
    panel = html[html.index('<section id="scan-progress"'):html.index("</section>",
                                                                     html.index("scan-progress"))]
    assert 'data-status="idle"' in panel and "hx-trigger" not in panel
    assert "Quick · 12 frames" in html and "Standard · 36 frames" in html
    assert re.search(r'<option value="standard" selected>', html)


def test_bad_frames_in_start_form_is_a_sentence(browser):
    for frames in ("abc", "0", "721"):
        answer = browser.post("/scans", data={"profile": "quick", "frames": frames}, headers=HX)
        assert answer.status_code == 400
        assert b"The number of frames must be a whole number from 1 to 720." in answer.data
        assert answer.data.lstrip().startswith(b'<div class="error"')


def test_pause_of_a_finished_scan_is_refused_with_a_sentence(web_app, browser):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), "completed")
    answer = browser.post(f"/scans/{scan_id}/pause", headers=HX)
    assert answer.status_code == 409
    assert b"only a queued or running scan can be paused" in answer.data
    assert b"<html" not in answer.data


def test_cancel_of_a_queued_scan_returns_the_final_panel(web_app, browser):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), "queued", captured=0)
    answer = browser.post(f"/scans/{scan_id}/cancel", headers=HX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert 'data-status="cancelled"' in html and "hx-trigger" not in html


def test_pause_and_resume_ask_the_job(web_app, browser):
    scan_id = add_scan(web_app, add_session(web_app, "Trial"), "running")
    pausing = browser.post(f"/scans/{scan_id}/pause", headers=HX)
    assert pausing.status_code == 200
    assert b"Pausing after this frame" in pausing.data and b">Resume</button>" in pausing.data
    assert b">Pause</button>" not in pausing.data and b"every 1s" in pausing.data
    again = browser.post(f"/scans/{scan_id}/pause", headers=HX)
    assert again.status_code == 409 and b"already paused or pausing" in again.data
    assert browser.post(f"/scans/{scan_id}/resume", headers=HX).status_code == 200
    # Without htmx (no JavaScript) the form post lands back on the scan's page.
    plain = browser.post(f"/scans/{scan_id}/pause")
    assert plain.status_code == 303 and plain.headers["Location"] == f"/scans/{scan_id}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_scan_with_queue_down_is_503_sentence(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = make_web_app(data_dir, SCANNER_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        answer = sign_in(app).post("/scans", data={"profile": "quick"}, headers=HX)
        assert answer.status_code == 503
        assert b"The job queue (Redis) is not reachable" in answer.data
        assert answer.data.lstrip().startswith(b'<div class="error"')
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def queued_app(tmp_path, redis_server):
    url = redis_server.rsplit("/", 1)[0] + f"/{WEB_TEST_REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = make_web_app(data_dir, SCANNER_REDIS_URL=url)
    yield app
    connection.flushdb()  # no job of ours is left for anyone's worker
    with app.app_context():
        db.engine.dispose()


def test_start_scan_form_swaps_in_live_progress_then_409(queued_app):
    person = sign_in(queued_app)
    answer = person.post("/scans", data={"profile": "quick", "frames": "4"}, headers=HX)
    assert answer.status_code == 200, answer.data
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="scan-progress"')
    assert 'data-status="queued"' in html and POLL in html
    assert "0 / 4" in html
    assert answer.headers["HX-Trigger"] == "scan-changed"  # today's session may be new

    second = person.post("/scans", data={"profile": "standard"}, headers=HX)
    assert second.status_code == 409
    assert b"before starting another scan" in second.data

    unknown = person.post("/scans", data={"profile": "gigantic"}, headers=HX)
    assert unknown.status_code == 400
    assert b"There is no scan profile" in unknown.data
