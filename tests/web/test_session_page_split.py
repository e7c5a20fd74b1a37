"""The session page shows scans and uploads apart (issue 14): each section has its list and
its own captures grid with its own valid/invalid filter and pages; scan frames say which
scan (and ring) they are from."""

from __future__ import annotations

import re

from tests.web.conftest import HX, add_capture, add_scan, add_session, add_upload


def _ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-capture-id="(\d+)"', html)}


def test_scans_and_uploads_have_their_own_captures(web_app, browser):
    session_id = add_session(web_app, "Split")
    scan_id = add_scan(web_app, session_id, "completed")
    upload_id = add_upload(web_app, session_id, "done")
    with web_app.app_context():
        from scanner_app.models import Capture
        from scanner_app.platform.extensions import db

        frames = [add_capture(web_app, session_id, f"images/scans/{scan_id}/frame_{i:03d}.jpg",
                              angle=i * 90.0) for i in range(3)]
        bad_frame = add_capture(web_app, session_id, f"images/scans/{scan_id}/frame_003.jpg",
                                valid=False, angle=270.0, reason="The frame is cut off.")
        images = [add_capture(web_app, session_id, f"images/uploads/{upload_id}/a{i}.jpg")
                  for i in range(2)]
        bad_image = add_capture(web_app, session_id, f"images/uploads/{upload_id}/notes.txt",
                                valid=False, reason="Not an image (JPEG, PNG or TIFF).")
        for capture_id in [*frames, bad_frame]:
            db.session.get(Capture, capture_id).scan_id = scan_id
            db.session.get(Capture, capture_id).ring = 0
        for capture_id in [*images, bad_image]:
            db.session.get(Capture, capture_id).upload_id = upload_id
        db.session.commit()

    page = browser.get(f"/sessions/{session_id}").get_data(as_text=True)
    scans_part = page.index('data-part="scans"')
    uploads_part = page.index('data-part="uploads"')
    assert scans_part < uploads_part
    assert page.index(f'/sessions/{session_id}/captures?source=scans') < uploads_part
    assert page.index(f'/sessions/{session_id}/captures?source=uploads') > uploads_part

    base = f"/sessions/{session_id}/captures"
    scans = browser.get(f"{base}?source=scans", headers=HX).get_data(as_text=True)
    assert _ids(scans) == {*frames, bad_frame}
    assert 'id="session-captures-scans"' in scans and f"Scan {scan_id} · ring 1 · 90°" in scans
    # Its filter links stay on its own grid.
    assert f'hx-get="{base}?valid=invalid&amp;source=scans" hx-target="#session-captures-scans"' \
        in scans
    uploads = browser.get(f"{base}?source=uploads", headers=HX).get_data(as_text=True)
    assert _ids(uploads) == {*images, bad_image} and 'id="session-captures-uploads"' in uploads

    invalid_scans = browser.get(f"{base}?source=scans&valid=invalid", headers=HX)
    assert _ids(invalid_scans.get_data(as_text=True)) == {bad_frame}
    valid_uploads = browser.get(f"{base}?source=uploads&valid=valid", headers=HX)
    assert _ids(valid_uploads.get_data(as_text=True)) == set(images)
    none_left = browser.get(f"{base}?source=uploads&valid=invalid&page=7", headers=HX)
    assert _ids(none_left.get_data(as_text=True)) == {bad_image}  # past the last: the last

    bad = browser.get(f"{base}?source=everything", headers=HX)
    assert bad.status_code == 400 and "of 'scans', of 'uploads', or of both" in bad.get_data(
        as_text=True).replace("&#39;", "'")
    # Without JavaScript a filter link opens the page with that section's grid filtered.
    plain = browser.get(f"{base}?source=scans&valid=invalid")
    assert plain.headers["Location"] == f"/sessions/{session_id}?valid=invalid&source=scans"
    opened = browser.get(plain.headers["Location"]).get_data(as_text=True)
    assert f"{base}?source=scans&amp;valid=invalid" in opened
    assert f'hx-get="{base}?source=uploads" hx-trigger="load"' in opened


def test_many_frames_page_within_the_scans_section(web_app, browser):
    session_id = add_session(web_app, "Paged")
    scan_id = add_scan(web_app, session_id, "completed")
    with web_app.app_context():
        from scanner_app.models import Capture
        from scanner_app.platform.extensions import db

        ids = [add_capture(web_app, session_id, f"images/scans/{scan_id}/f{i:03d}.jpg",
                           data=b"", angle=float(i)) for i in range(50)]
        for capture_id in ids:
            db.session.get(Capture, capture_id).scan_id = scan_id
        db.session.commit()
    add_capture(web_app, session_id, "images/uploads/1/x.jpg")  # an upload's: not counted
    first = browser.get(f"/sessions/{session_id}/captures?source=scans", headers=HX)
    text = first.get_data(as_text=True)
    assert "Page 1 of 2" in text and len(_ids(text)) == 48
    second = browser.get(f"/sessions/{session_id}/captures?source=scans&page=2", headers=HX)
    assert _ids(second.get_data(as_text=True)) == set(ids[48:])
