"""An interrupted scan (its worker stopped mid-scan) is shown on the dashboard with Resume,
instead of the idle panel; the slot still watches for scans newer than the newest one."""

from __future__ import annotations

import re

from tests.web.conftest import add_scan, add_session


def test_dashboard_shows_the_newest_interrupted_scan_with_resume(web_app, browser):
    session_id = add_session(web_app, "Trial")
    add_scan(web_app, session_id, "interrupted", captured=1)
    dropped = add_scan(web_app, session_id, "interrupted", captured=4, planned=12)
    newest = add_scan(web_app, session_id, "completed", captured=12, planned=12)
    html = browser.get("/").get_data(as_text=True)
    assert f'data-scan-id="{dropped}"' in html and 'data-status="interrupted"' in html
    assert f'action="/scans/{dropped}/resume"' in html and ">Resume</button>" in html
    assert "Resume continues from frame 5" in html
    # Watching from the newest scan on: the finished one must not replace the panel.
    assert re.search(rf'hx-get="/scans/slot\?watch=1&amp;after={newest}"', html)


def test_dashboard_without_an_interrupted_scan_is_idle(web_app, browser):
    add_scan(web_app, add_session(web_app, "Trial"), "completed", captured=12, planned=12)
    html = browser.get("/").get_data(as_text=True)
    assert 'data-status="idle"' in html and ">Resume</button>" not in html


def test_an_active_scan_comes_before_an_interrupted_one(web_app, browser):
    session_id = add_session(web_app, "Trial")
    add_scan(web_app, session_id, "interrupted", captured=4)
    running = add_scan(web_app, session_id, "running", captured=2)
    html = browser.get("/").get_data(as_text=True)
    assert f'data-scan-id="{running}"' in html and 'data-status="interrupted"' not in html
