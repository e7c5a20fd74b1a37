"""Every page renders for a signed-in person; anonymous people are sent to sign in; htmx
requests get only the partial; the mock-hardware banner shows when the rig is simulated."""

from __future__ import annotations

import re

import pytest

from scanner_app.platform.extensions import db
from tests.web.conftest import (
    HX,
    add_capture,
    add_scan,
    add_session,
    add_upload,
    make_web_app,
    sign_in,
)

MOCK_BANNER = b"Mock hardware: scans use a simulated camera and turntable"


def test_first_run_setup_creates_admin_and_opens_dashboard(web_app):
    person = web_app.test_client()
    assert person.get("/").headers["Location"].startswith("/login")
    assert person.get("/login").headers["Location"].endswith("/setup")
    setup_page = person.get("/setup")
    assert b'name="name"' in setup_page.data and b'name="password"' in setup_page.data
    answer = person.post("/setup", data={"name": "ada", "password": "correct horse"})
    assert answer.status_code == 302
    dashboard = person.get("/")
    assert dashboard.status_code == 200
    assert b"Start scan" in dashboard.data


@pytest.mark.parametrize("path", ["/", "/sessions", "/sessions/1", "/upload", "/scans/1",
                                  "/sessions/1/files/metadata/session.json"])
def test_anonymous_page_request_is_sent_to_login(web_app, path):
    answer = web_app.test_client().get(path)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", ["/", "/scans/1/progress", "/sessions/1/uploads"])
def test_anonymous_htmx_request_is_401_with_hx_redirect(web_app, path):
    answer = web_app.test_client().get(path, headers=HX)
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"].startswith("/login?next=")
    assert b"<html" not in answer.data


def test_anonymous_form_post_changes_nothing(web_app):
    answer = web_app.test_client().post("/sessions", data={"name": "Sneaky"}, headers=HX)
    assert answer.status_code == 401
    with web_app.app_context():
        from scanner_app.sessions.service import search_sessions

        assert search_sessions() == []


def test_every_page_renders_with_navigation(web_app, browser):
    session_id = add_session(web_app, "Trial ABC-123", make_current=True)
    scan_id = add_scan(web_app, session_id, "completed", captured=12, planned=12)
    add_capture(web_app, session_id, f"images/scans/{scan_id}/frame_000.jpg", angle=0.0)
    add_upload(web_app, session_id, "done", filename="reference shot.jpg")

    pages = {
        "/": [b"Start scan", b"Trial ABC-123", b"Back to today's session"],
        "/sessions": [b"All sessions", b"Trial ABC-123", b"Create session"],
        # Its scans and uploads are loaded from their slices (hx-get), checked below.
        f"/sessions/{session_id}": [b"Trial ABC-123", b"Download ZIP",
                                    f"/api/v1/sessions/{session_id}/export.zip".encode(),
                                    f'hx-get="/sessions/{session_id}/uploads"'.encode(),
                                    f'hx-get="/sessions/{session_id}/scans"'.encode()],
        "/upload": [b'type="file" name="files" multiple', b'hx-encoding="multipart/form-data"',
                    b"Trial ABC-123"],
        f"/scans/{scan_id}": [b"Completed", b"12 / 12"],
    }
    for path, expected in pages.items():
        answer = browser.get(path)
        assert answer.status_code == 200, (path, answer.data[:500])
        body = answer.data
        assert body.startswith(b"<!doctype html>"), path
        for text in expected:
            assert text in body, (path, text)
        # The navigation on every page, and sign-out as a POST form.
        for link in (b'href="/sessions"', b'href="/upload"', b'href="/rq/"'):
            assert link in body, (path, link)
    parts = {f"/sessions/{session_id}/uploads": b"reference shot.jpg",
             f"/sessions/{session_id}/scans": f"Scan {scan_id}".encode()}
    for path, text in parts.items():
        assert text in browser.get(path, headers=HX).data, path
        assert re.search(rb'<form method="post" action="/logout"', body), path
        assert b"htmx.min.js" in body and b"station.css" in body


def test_htmx_request_gets_only_the_partial(web_app, browser):
    session_id = add_session(web_app, "Trial P")
    scan_id = add_scan(web_app, session_id, "running")

    page = browser.get("/sessions")
    partial = browser.get("/sessions", headers=HX)
    assert b"<html" in page.data and b'id="session-list"' in page.data
    assert partial.status_code == 200
    assert partial.data.lstrip().startswith(b'<section id="session-list"')
    assert b"<html" not in partial.data and b"Create session" not in partial.data

    page = browser.get(f"/scans/{scan_id}/progress")
    partial = browser.get(f"/scans/{scan_id}/progress", headers=HX)
    assert b"<html" in page.data
    assert b"<html" not in partial.data
    assert partial.data.count(b'id="scan-progress"') == 1

    partial = browser.get(f"/sessions/{session_id}/captures?valid=invalid", headers=HX)
    assert b"<html" not in partial.data and b'id="session-captures"' in partial.data


def test_mock_banner_on_every_page_when_hal_is_mock(web_app, browser):
    for path in ("/", "/sessions", "/upload"):
        assert MOCK_BANNER in browser.get(path).data
    assert MOCK_BANNER in web_app.test_client().get("/login").data  # signed out too


def test_no_mock_banner_on_real_hardware(tmp_path):
    data_dir = tmp_path / "pi-data"
    data_dir.mkdir()
    app = make_web_app(data_dir, SCANNER_HAL="pi")
    try:
        assert app.config["SCANNER_SETTINGS"].hal.driver == "pi"
        person = sign_in(app)
        body = person.get("/").data
        assert b"Start scan" in body
        assert MOCK_BANNER not in body
    finally:
        with app.app_context():
            db.engine.dispose()


def test_unknown_session_page_is_a_404_sentence(browser):
    answer = browser.get("/sessions/999")
    assert answer.status_code == 404
    assert b"There is no session 999" in answer.data
    assert b"Traceback" not in answer.data
    partial = browser.get("/sessions/999/captures", headers=HX)
    assert partial.status_code == 404
    assert partial.data.lstrip().startswith(b'<div class="error"')
