"""A done upload never carries an error: a duplicate, or archive entries skipped for safety,
are a `note` (scripts read a non-null `error` as a failure). Pages show a note calmly and an
error as one."""

from __future__ import annotations

import re

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from scanner_app.uploads.recorder import finish
from tests.uploads.helpers import image_bytes, post_files, zip_with_raw_names


def _item(html: str, upload_id: int) -> str:
    match = re.search(rf'<li[^>]*data-upload-id="{upload_id}".*?</li>', html, re.S)
    assert match, html
    return match.group(0)


def test_pages_show_notes_as_notes_and_errors_as_errors(sqlite_app, sqlite_client):
    photo = image_bytes(seed=11)
    hostile = zip_with_raw_names([("../out.jpg", image_bytes(seed=12)),
                                  ("in.jpg", image_bytes(seed=13))])
    body = post_files(sqlite_client, [("p.jpg", photo), ("copy.jpg", photo),
                                      ("h.zip", hostile)]).get_json()
    original, copy, archive = body["uploads"]
    assert (copy["status"], copy["error"]) == ("done", None)
    assert copy["note"] == f"Same file as upload {original['id']}; stored once."
    assert (archive["status"], archive["error"]) == ("done", None)
    assert archive["note"].startswith("1 entry was not extracted: '../out.jpg'")
    with sqlite_app.app_context():
        # Stored as a note, not an error (nothing for the duplicate: made from duplicate_of).
        assert db.session.get(Upload, copy["id"]).note is None
        assert db.session.get(Upload, archive["id"]).note == archive["note"]

    html = sqlite_client.get(f"/sessions/{body['session_id']}/uploads",
                             headers={"HX-Request": "true"}).get_data(as_text=True)
    dup_item = _item(html, copy["id"])
    assert f"Same file as upload {original['id']}; stored once." in dup_item
    assert 'class="note"' in dup_item and "error-text" not in dup_item
    archive_item = _item(html, archive["id"])
    assert 'class="note"' in archive_item and "error-text" not in archive_item
    assert 'class="note"' not in _item(html, original["id"])


def test_a_failed_upload_has_an_error_and_no_note(sqlite_app, sqlite_client):
    body = post_files(sqlite_client, [("a.jpg", image_bytes(seed=21))]).get_json()
    upload_id = body["uploads"][0]["id"]
    with sqlite_app.app_context():
        row = db.session.get(Upload, upload_id)
        row.status, row.note = "processing", "an old note"
        db.session.commit()
        assert finish(upload_id, "failed", "It broke; send it again.") is True
    answer = sqlite_client.get(f"/api/v1/uploads/{upload_id}").get_json()["upload"]
    assert (answer["status"], answer["error"], answer["note"]) == (
        "failed", "It broke; send it again.", None)
    html = sqlite_client.get(f"/sessions/{body['session_id']}/uploads",
                             headers={"HX-Request": "true"}).get_data(as_text=True)
    item = _item(html, upload_id)
    assert '<small class="error-text">It broke; send it again.</small>' in item
    assert 'class="note"' not in item
