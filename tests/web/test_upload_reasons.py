"""Upload results say why a file is invalid: a done upload whose files are not all valid
images carries the reason in Upload.error (uploads/recorder.py), shown under its counts."""

from __future__ import annotations

import re

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from tests.web.conftest import HX, add_session, add_upload

REASON = "1 of 1 files is not a valid image. notes.txt: not an image file (a text file)."


def test_batch_results_show_the_reason_of_an_invalid_file(web_app, browser):
    session_id = add_session(web_app, "Batch")
    bad = add_upload(web_app, session_id, "done", filename="notes.txt")
    good = add_upload(web_app, session_id, "done", filename="photo.jpg")
    with web_app.app_context():
        db.session.get(Upload, bad).invalid_count = 1
        db.session.get(Upload, bad).error = REASON
        db.session.get(Upload, good).valid_count = 1
        db.session.commit()
    html = browser.get(f"/uploads/batch?ids={bad},{good}", headers=HX).get_data(as_text=True)
    rows = dict(re.findall(r'data-upload-id="(\d+)">(.*?)</li>', html, flags=re.S))
    assert "0 valid" in rows[str(bad)] and "1 invalid" in rows[str(bad)]
    assert REASON in rows[str(bad)]
    assert "1 image" in rows[str(good)] and "error-text" not in rows[str(good)]
