"""The sessions list and one session's page: create (with sentences for bad names), rename,
complete/reactivate, make current, merge, delete, and the captures grid."""

from __future__ import annotations

import re

from tests.web.conftest import (
    HX,
    add_capture,
    add_scan,
    add_session,
    add_upload,
    jpeg_bytes,
    session_row,
)


def test_create_session_swaps_in_the_list_with_it(web_app, browser):
    add_session(web_app, "Older one")
    answer = browser.post("/sessions", data={"name": "  Trial   ABC-123 ", "make_current": "1"},
                          headers=HX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="session-list"')
    # Newest first, marked new and current.
    assert html.index("Trial ABC-123") < html.index("Older one")
    assert re.search(r'class="session-row is-new"', html)
    assert "current</span>" in html
    dashboard = browser.get("/").get_data(as_text=True)
    assert "Trial ABC-123" in dashboard and "Chosen session" in dashboard


def test_create_session_without_make_current_leaves_today(web_app, browser):
    browser.post("/sessions", data={"name": "Side project"}, headers=HX)
    dashboard = browser.get("/").get_data(as_text=True)
    assert "Today's session" in dashboard and "Side project" in dashboard  # in the select


def test_bad_session_names_are_sentences_next_to_the_form(web_app, browser):
    add_session(web_app, "Taken")
    cases = [
        ("   ", 400, "Give the session a name"),
        ("x" * 121, 400, "keep it to 120 or fewer"),
        ("Taken", 409, "A session named &#39;Taken&#39; already exists; choose another name."),
    ]
    for name, status, sentence in cases:
        answer = browser.post("/sessions", data={"name": name}, headers=HX)
        assert answer.status_code == status, name
        html = answer.get_data(as_text=True)
        assert html.lstrip().startswith('<div class="error" role="alert"'), html
        assert sentence in html
        assert "Traceback" not in html
    # Without JavaScript the same sentence arrives as a page.
    plain = browser.post("/sessions", data={"name": ""})
    assert plain.status_code == 400 and b"Give the session a name" in plain.data


def test_sessions_list_has_totals_row(web_app, browser):
    a = add_session(web_app, "A")
    b = add_session(web_app, "B")
    add_upload(web_app, a, "done")
    with web_app.app_context():
        from scanner_app.platform.extensions import db
        from scanner_app.sessions.counters import bump_session_counters

        bump_session_counters(a, captures_count=5, valid_count=4, invalid_count=1, files_count=2)
        bump_session_counters(b, captures_count=7, valid_count=7, scans_count=1)
        db.session.commit()
    html = browser.get("/sessions").get_data(as_text=True)
    totals = html[html.index('class="totals-row"'):html.index("</tr>", html.index("totals-row"))]
    assert "All sessions" in totals
    numbers = re.findall(r'class="num">(\d+)</td>', totals)
    assert numbers == ["12", "11", "1", "2", "1"]
    assert f'href="/sessions/{a}"' in html and f'href="/sessions/{b}"' in html


def test_rename_complete_reactivate_and_make_current(web_app, browser):
    session_id = add_session(web_app, "Draft")
    add_session(web_app, "Taken")

    renamed = browser.post(f"/sessions/{session_id}/rename", data={"name": "Final"}, headers=HX)
    assert renamed.status_code == 200
    assert renamed.data.lstrip().startswith(b'<section id="session-summary"')
    assert b"Final" in renamed.data and session_row(web_app, session_id).name == "Final"

    clash = browser.post(f"/sessions/{session_id}/rename", data={"name": "Taken"}, headers=HX)
    assert clash.status_code == 409 and b"already exists" in clash.data

    done = browser.post(f"/sessions/{session_id}/status", data={"status": "completed"},
                        headers=HX)
    assert b"Reactivate" in done.data and session_row(web_app, session_id).status == "completed"
    again = browser.post(f"/sessions/{session_id}/status", data={"status": "active"}, headers=HX)
    assert b"Mark completed" in again.data and session_row(web_app, session_id).status == "active"

    current = browser.post(f"/sessions/{session_id}/current", headers=HX)
    assert b"new work goes here" in current.data and b"Back to today" in current.data
    back = browser.post(f"/sessions/{session_id}/current", data={"today": "1"}, headers=HX)
    assert b"new work goes here" not in back.data and b"Make current" in back.data

    # Without JavaScript: a redirect back to the page (post/redirect/get).
    plain = browser.post(f"/sessions/{session_id}/rename", data={"name": "Plain"})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/sessions/{session_id}"


def test_dashboard_make_current_and_back_to_today(web_app, browser):
    session_id = add_session(web_app, "Bench trial")
    picked = browser.post("/current", data={"session_id": str(session_id)}, headers=HX)
    assert picked.status_code == 200
    assert picked.data.lstrip().startswith(b'<section id="current-session"')
    assert b"Bench trial" in picked.data and b"Back to today" in picked.data
    back = browser.post("/current", data={"session_id": ""}, headers=HX)
    assert b"Today&#39;s session" in back.data or b"Today's session" in back.data
    assert b"Back to today" not in back.data
    unknown = browser.post("/current", data={"session_id": "999"}, headers=HX)
    assert unknown.status_code == 404 and b"There is no session 999" in unknown.data


def test_merge_moves_everything_and_leaves_the_page(web_app, browser):
    source = add_session(web_app, "Source")
    target = add_session(web_app, "Target")
    add_capture(web_app, source, "images/uploads/1/a.jpg")
    answer = browser.post(f"/sessions/{source}/merge", data={"into": str(target)}, headers=HX)
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"] == f"/sessions/{target}"
    assert session_row(web_app, source) is None
    grid = browser.get(f"/sessions/{target}/captures", headers=HX).get_data(as_text=True)
    assert "a.jpg" in grid

    into_itself = browser.post(f"/sessions/{target}/merge", data={"into": str(target)},
                               headers=HX)
    assert into_itself.status_code == 400 and b"cannot be merged into itself" in into_itself.data


def test_delete_session_and_refusal_while_scanning(web_app, browser, data_dir):
    busy = add_session(web_app, "Busy")
    add_scan(web_app, busy, "running")
    refused = browser.post(f"/sessions/{busy}/delete", headers=HX)
    assert refused.status_code == 409 and b"Cancel it first" in refused.data

    doomed = add_session(web_app, "Doomed")
    assert (data_dir / "sessions" / str(doomed)).is_dir()
    page = browser.get(f"/sessions/{doomed}").get_data(as_text=True)
    assert "hx-confirm=\"Delete 'Doomed' with all its scans" in page
    answer = browser.post(f"/sessions/{doomed}/delete", headers=HX)
    assert answer.status_code == 204 and answer.headers["HX-Redirect"] == "/sessions"
    assert session_row(web_app, doomed) is None
    assert not (data_dir / "sessions" / str(doomed)).exists()


def test_captures_grid_pages_filters_and_thumbnails(web_app, browser):
    session_id = add_session(web_app, "Grid")
    thumb_id = add_capture(web_app, session_id, "images/scans/1/frame_000.jpg", angle=0.0,
                           thumbnail=jpeg_bytes((16, 12)))
    for index in range(1, 50):
        add_capture(web_app, session_id, f"images/scans/1/frame_{index:03d}.jpg",
                    angle=index * 7.2, data=b"")
    bad_id = add_capture(web_app, session_id, "images/uploads/9/notes.txt", valid=False,
                         data=b"hello", reason="Not an image (JPEG, PNG or TIFF).")

    html = browser.get(f"/sessions/{session_id}/captures", headers=HX).get_data(as_text=True)
    thumb_url = f"/sessions/{session_id}/thumbnails/{thumb_id}.jpg"
    assert f'src="{thumb_url}?src=images/scans/1/frame_000.jpg"' in html
    assert html.count('class="thumb"') == 48  # first page: 48 of 51
    assert "Page 1 of 2" in html and "0°" in html

    second = browser.get(f"/sessions/{session_id}/captures?page=2", headers=HX)
    text = second.get_data(as_text=True)
    assert "Page 2 of 2" in text and f'data-capture-id="{bad_id}"' in text

    invalid = browser.get(f"/sessions/{session_id}/captures?valid=invalid", headers=HX)
    text = invalid.get_data(as_text=True)
    assert text.count('data-capture-id="') == 1 and "Not an image" in text
    assert 'aria-current="true">Invalid<' in text

    bad = browser.get(f"/sessions/{session_id}/captures?valid=maybe", headers=HX)
    assert bad.status_code == 400


def test_session_page_scans_and_uploads_poll_only_while_working(web_app, browser):
    session_id = add_session(web_app, "Busy")
    add_upload(web_app, session_id, "done", filename="one.jpg")
    processing = add_upload(web_app, session_id, "processing", filename="two.jpg")
    scan_id = add_scan(web_app, session_id, "running")

    answer = browser.get(f"/sessions/{session_id}/uploads", headers=HX)
    uploads = answer.get_data(as_text=True)
    assert f'hx-get="/sessions/{session_id}/uploads" hx-trigger="every 1s"' in uploads
    assert 'data-status="processing"' in uploads and "two.jpg" in uploads
    assert "HX-Trigger" not in answer.headers
    answer = browser.get(f"/sessions/{session_id}/scans", headers=HX)
    scans = answer.get_data(as_text=True)
    assert "hx-trigger" in scans and f"Scan {scan_id}" in scans
    assert "HX-Trigger" not in answer.headers

    # The page loads each slice's part by itself; its counters and the captures grid
    # wait for the lists to settle.
    page = browser.get(f"/sessions/{session_id}").get_data(as_text=True)
    for part in ("scans", "uploads", "captures?source=scans", "captures?source=uploads"):
        assert f'hx-get="/sessions/{session_id}/{part}" hx-trigger="load"' in page
    assert (f'hx-get="/sessions/{session_id}/counters" hx-trigger="scan-changed from:body, '
            'uploads-changed from:body"') in page
    grid = browser.get(f"/sessions/{session_id}/captures", headers=HX).get_data(as_text=True)
    assert (f'hx-get="/sessions/{session_id}/captures" hx-trigger="scan-changed from:body, '
            'uploads-changed from:body"') in grid
    assert browser.get(f"/sessions/{session_id}/captures").headers["Location"] == (
        f"/sessions/{session_id}")  # a plain visit gets the whole page

    with web_app.app_context():
        from scanner_app.models import Scan, Upload
        from scanner_app.platform.extensions import db

        db.session.get(Upload, processing).status = "done"
        db.session.get(Scan, scan_id).status = "completed"
        db.session.commit()
    answer = browser.get(f"/sessions/{session_id}/uploads", headers=HX)
    uploads = answer.get_data(as_text=True)
    assert "hx-trigger" not in uploads and 'data-processing="0"' in uploads
    assert answer.headers["HX-Trigger"] == "uploads-changed"
    answer = browser.get(f"/sessions/{session_id}/scans", headers=HX)
    scans = answer.get_data(as_text=True)
    assert "hx-trigger" not in scans and "completed" in scans
    assert answer.headers["HX-Trigger"] == "scan-changed"

    counters = browser.get(f"/sessions/{session_id}/counters", headers=HX)
    assert counters.data.lstrip().startswith(b'<div class="session-counters"')
    assert b"Captures" in counters.data


def test_download_zip_link_works_with_the_login_cookie(web_app, browser):
    import io
    import zipfile

    session_id = add_session(web_app, "Zipped")
    add_capture(web_app, session_id, "images/uploads/1/a.jpg")
    page = browser.get(f"/sessions/{session_id}").get_data(as_text=True)
    link = f"/api/v1/sessions/{session_id}/export.zip"
    assert f'href="{link}" download' in page
    answer = browser.get(link)
    assert answer.status_code == 200, answer.data[:300]
    names = zipfile.ZipFile(io.BytesIO(answer.data)).namelist()
    assert any(name.endswith("images/uploads/1/a.jpg") for name in names), names
