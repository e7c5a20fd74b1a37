"""POST /api/v1/uploads and GET /api/v1/uploads/<id>: images, counters, duplicates, names, and
each kind of bad file, with the answer, the counters and the files on disk checked.

These run without a queue (no Redis in the app's settings), so processing happens in the
request, the documented fallback; test_queue.py covers the queued path with a real worker,
test_bad_input_paths.py runs a representative batch of bad input through both paths, and
test_claims.py the two paths running at once.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from tests.conftest import build_app
from tests.support import api_client
from tests.uploads.conftest import captures_of, counted, counters, error_of, session_ids
from tests.uploads.helpers import (
    assert_written_only_inside,
    image_bytes,
    post_files,
    snapshot,
)


def upload_dir(data_dir: Path, session_id: int, upload_id: int) -> Path:
    return data_dir / "sessions" / str(session_id) / "images" / "uploads" / str(upload_id)


# --- what works ------------------------------------------------------------------------------

def test_images_become_captures_with_counts_exif_and_thumbnails(app, client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    files = [
        ("front.jpg", image_bytes("JPEG", (640, 480), taken="2024:05:06 07:08:09",
                                  offset="+02:00")),
        ("side.png", image_bytes("PNG", (300, 200))),
        ("top.tiff", image_bytes("TIFF", (120, 90))),
    ]
    response = post_files(client, files)
    assert response.status_code == 201
    body = response.get_json()
    session_id = body["session_id"]
    assert [u["filename"] for u in body["uploads"]] == ["front.jpg", "side.png", "top.tiff"]
    for upload in body["uploads"]:
        assert upload["session_id"] == session_id
        assert upload["status"] == "done" and upload["error"] is None
        assert (upload["captures_count"], upload["valid_count"], upload["invalid_count"]) == (
            1, 1, 0)
    assert body["uploads"][0]["size"] == len(files[0][1])

    assert counters(app, session_id) == {"files_count": 3, "captures_count": 3,
                                         "valid_count": 3, "invalid_count": 0}
    assert counted(app, session_id) == counters(app, session_id)
    session = client.get(f"/api/v1/sessions/{session_id}").get_json()["session"]
    assert session["kind"] == "auto" and session["files_count"] == 3

    front = captures_of(app, body["uploads"][0]["id"])[0]
    assert (front["width"], front["height"], front["valid"]) == (640, 480, True)
    assert front["taken_at"] == "2024-05-06T05:08:09Z"  # 07:08 at +02:00
    assert front["path"] == f"images/uploads/{body['uploads'][0]['id']}/front.jpg"
    session_root = data_dir / "sessions" / str(session_id)
    assert (session_root / front["path"]).read_bytes() == files[0][1]

    for upload in body["uploads"]:
        capture = captures_of(app, upload["id"])[0]
        thumb = session_root / "metadata" / "thumbnails" / f"{capture['id']}.jpg"
        with Image.open(thumb) as img:
            assert img.format == "JPEG" and max(img.size) <= 320

    single = client.get(f"/api/v1/uploads/{body['uploads'][1]['id']}")
    assert single.status_code == 200
    assert single.get_json()["upload"]["filename"] == "side.png"
    assert_written_only_inside(tmp_path, before, data_dir, session_id)


def test_unknown_upload_is_404_with_the_error_body(client):
    response = client.get("/api/v1/uploads/9999")
    assert response.status_code == 404
    assert error_of(response)[0] == "not_found"


def test_anonymous_upload_is_401(app, data_dir):
    response = app.test_client().post("/api/v1/uploads", data={"files": (io.BytesIO(b"x"),
                                                                         "a.jpg")})
    assert response.status_code == 401
    assert session_ids(app) == []


def test_named_and_current_sessions_receive_uploads(app, client):
    trial = client.post("/api/v1/sessions", json={"name": "Trial 7"}).get_json()["session"]
    other = client.post("/api/v1/sessions", json={"name": "Other", "make_current": False})
    other = other.get_json()["session"]
    into_current = post_files(client, [("a.jpg", image_bytes(seed=1))]).get_json()
    assert into_current["session_id"] == trial["id"]
    named = post_files(client, [("b.jpg", image_bytes(seed=2))], session_id=other["id"])
    assert named.get_json()["session_id"] == other["id"]
    assert counters(app, trial["id"])["files_count"] == 1
    assert counters(app, other["id"])["files_count"] == 1


def test_upload_reactivates_a_completed_auto_session(app, client):
    first = post_files(client, [("a.jpg", image_bytes(seed=1))]).get_json()
    session_id = first["session_id"]
    done = client.patch(f"/api/v1/sessions/{session_id}", json={"status": "completed"})
    assert done.get_json()["session"]["status"] == "completed"

    again = post_files(client, [("b.jpg", image_bytes(seed=2))])
    assert again.status_code == 201
    assert again.get_json()["session_id"] == session_id  # reused, not a second auto session
    session = client.get(f"/api/v1/sessions/{session_id}").get_json()["session"]
    assert session["status"] == "active"
    assert (session["files_count"], session["valid_count"]) == (2, 2)
    assert session_ids(app) == [session_id]


# --- duplicates ------------------------------------------------------------------------------

def test_same_bytes_twice_are_stored_once_and_reported(app, client, data_dir):
    photo = image_bytes(seed=42)
    first = post_files(client, [("photo.jpg", photo), ("copy.jpg", photo)]).get_json()
    session_id = first["session_id"]
    original, copy = first["uploads"]
    assert original["duplicate_of"] is None and original["status"] == "done"
    assert copy["duplicate_of"] == original["id"]
    # Done, nothing went wrong: scripts reading a non-null error as a failure must not.
    assert copy["error"] is None and original["note"] is None
    assert copy["note"] == f"Same file as upload {original['id']}; stored once."
    assert copy["status"] == "done" and copy["captures_count"] == 0

    later = post_files(client, [("again.jpg", photo)]).get_json()["uploads"][0]
    assert later["duplicate_of"] == original["id"]
    assert later["error"] is None
    assert later["note"] == f"Same file as upload {original['id']}; stored once."
    assert client.get(f"/api/v1/uploads/{later['id']}").get_json()["upload"] == later

    expected = {"files_count": 1, "captures_count": 1, "valid_count": 1, "invalid_count": 0}
    assert counters(app, session_id) == expected == counted(app, session_id)
    uploads_root = data_dir / "sessions" / str(session_id) / "images" / "uploads"
    assert sorted(p.name for p in uploads_root.iterdir()) == [str(original["id"])]

    # Another session is another place: the same file is stored there too.
    other = client.post("/api/v1/sessions", json={"name": "Elsewhere"}).get_json()["session"]
    there = post_files(client, [("photo.jpg", photo)], session_id=other["id"]).get_json()
    assert there["uploads"][0]["duplicate_of"] is None
    assert counters(app, other["id"])["files_count"] == 1


def test_sessions_holding_the_same_file_can_still_be_merged(app, client):
    photo = image_bytes(seed=77)
    first = client.post("/api/v1/sessions", json={"name": "Morning"}).get_json()["session"]["id"]
    second = client.post("/api/v1/sessions", json={"name": "Evening"}).get_json()["session"]["id"]
    kept = post_files(client, [("p.jpg", photo)], session_id=first).get_json()["uploads"][0]
    post_files(client, [("p.jpg", photo)], session_id=second)

    merged = client.post(f"/api/v1/sessions/{second}/merge", json={"into": first})
    assert merged.status_code == 200
    assert merged.get_json()["session"]["files_count"] == 2  # both were received, in two sessions
    again = post_files(client, [("p.jpg", photo)], session_id=first).get_json()["uploads"][0]
    assert again["duplicate_of"] == kept["id"]  # the older of the two
    assert counters(app, first)["files_count"] == 2


# --- bad input -------------------------------------------------------------------------------

def test_a_file_that_lies_about_its_type_is_judged_by_content(sqlite_app, sqlite_client, data_dir,
                                                              tmp_path):
    before = snapshot(tmp_path)
    files = [("holiday.jpg", image_bytes("PNG", (50, 40))),
             ("scan.png", image_bytes("JPEG", (30, 20))),
             ("noext", image_bytes("TIFF", (10, 10))),
             ("photo.tif", b"%PDF-1.4 a document, named as a photo\n"),
             ("movie.png", b"\x00\x00\x00\x18ftypmp42" + bytes(64))]
    response = post_files(sqlite_client, files)
    assert response.status_code == 201
    body = response.get_json()
    session_id = body["session_id"]
    assert [u["status"] for u in body["uploads"]] == ["done"] * 5
    by_name = {u["filename"]: captures_of(sqlite_app, u["id"]) for u in body["uploads"]}
    assert all(len(found) == 1 for found in by_name.values()), by_name
    by_name = {name: found[0] for name, found in by_name.items()}
    assert by_name["holiday.jpg"]["valid"] and by_name["holiday.jpg"]["width"] == 50
    assert by_name["holiday.jpg"]["reason"] == "Named .jpg but holds a PNG image."
    assert by_name["scan.png"]["valid"]
    assert by_name["scan.png"]["reason"] == "Named .png but holds a JPEG image."
    assert by_name["noext"]["valid"] and by_name["noext"]["reason"] is None
    for liar, ext in (("photo.tif", ".tif"), ("movie.png", ".png")):  # no image inside at all
        assert (by_name[liar]["valid"], by_name[liar]["reason"]) == (
            False, f"It is named {ext} but is not a JPEG, PNG or TIFF image.")
    # Each kept as sent, under its own name, in its own upload's folder.
    for upload, (name, content) in zip(body["uploads"], files, strict=True):
        assert (upload_dir(data_dir, session_id, upload["id"]) / name).read_bytes() == content
    expected = {"files_count": 5, "captures_count": 5, "valid_count": 3, "invalid_count": 2}
    assert counters(sqlite_app, session_id) == expected == counted(sqlite_app, session_id)
    assert_written_only_inside(tmp_path, before, data_dir, session_id)


@pytest.mark.parametrize("name,stored", [
    ("../../escape.jpg", "escape.jpg"),
    ("/etc/passwd", "passwd"),
    ("..\\..\\windows.jpg", "windows.jpg"),
    ("C:\\Users\\me\\photo.jpg", "Usersmephoto.jpg"),
    ("..", "file"),
    ("sub/../../../x.jpg", "x.jpg"),
    ("\x00\x01.jpg", "jpg"),
])
def test_path_traversal_in_file_names_stays_inside(sqlite_app, sqlite_client, data_dir, tmp_path,
                                                    name, stored):
    before = snapshot(tmp_path)
    content = image_bytes(seed=len(name))
    body = post_files(sqlite_client, [(name, content)]).get_json()
    upload = body["uploads"][0]
    if "\\" not in name:
        # Werkzeug reads a backslash in a quoted header value as an escape (browsers send
        # none: they send base names), so only names without one come back verbatim.
        # The name as sent is kept in the database, less control characters (a NUL).
        assert upload["filename"] == "".join(c for c in name if c >= " ")
    folder = upload_dir(data_dir, body["session_id"], upload["id"])
    assert [p.name for p in folder.iterdir()] == [stored]
    assert (folder / stored).read_bytes() == content
    assert counters(sqlite_app, body["session_id"])["files_count"] == 1
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_unicode_and_very_long_names(sqlite_app, sqlite_client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    long_name = "\u00e9t\u00e9-" * 150 + ".jpg"  # about 1000 bytes of UTF-8
    files = [("Fu\u0308\u00dfg\u00e4nger \u65e5\u672c\u8a9e \U0001f4f7.jpg", image_bytes(seed=1)),
             (long_name, image_bytes(seed=2))]
    body = post_files(sqlite_client, files).get_json()
    unicode_upload, long_upload = body["uploads"]
    assert unicode_upload["filename"] == files[0][0]
    assert long_upload["filename"] == long_name
    unicode_dir = upload_dir(data_dir, body["session_id"], unicode_upload["id"])
    assert [p.name for p in unicode_dir.iterdir()] == [
        "F\u00fc\u00dfg\u00e4nger \u65e5\u672c\u8a9e \U0001f4f7.jpg"]  # NFC
    stored = next(upload_dir(data_dir, body["session_id"], long_upload["id"]).iterdir()).name
    assert stored.endswith(".jpg") and len(stored.encode()) <= 200
    assert counters(sqlite_app, body["session_id"])["valid_count"] == 2
    assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])


def test_five_hundred_files_in_one_request(sqlite_app, sqlite_client, data_dir):
    files = [(f"frame-{i:03d}.png", image_bytes("PNG", (16, 12), seed=i)) for i in range(500)]
    response = post_files(sqlite_client, files)
    assert response.status_code == 201
    body = response.get_json()
    assert len(body["uploads"]) == 500
    assert len({u["id"] for u in body["uploads"]}) == 500
    expected = {"files_count": 500, "captures_count": 500, "valid_count": 500,
                "invalid_count": 0}
    assert counters(sqlite_app, body["session_id"]) == expected == counted(sqlite_app,
                                                                           body["session_id"])


def test_empty_request_and_missing_files_field_are_400(sqlite_app, sqlite_client, data_dir,
                                                       tmp_path):
    before = snapshot(tmp_path)
    empty = sqlite_client.post("/api/v1/uploads")
    assert empty.status_code == 400
    assert error_of(empty)[0] == "no_files"

    only_field = sqlite_client.post("/api/v1/uploads", data={"session_id": "1"},
                                    content_type="multipart/form-data")
    assert only_field.status_code == 400
    code, message = error_of(only_field)
    assert code == "no_files" and "'files'" in message

    wrong_field = sqlite_client.post("/api/v1/uploads",
                                     data={"file": (io.BytesIO(b"abc"), "a.jpg")},
                                     content_type="multipart/form-data")
    assert wrong_field.status_code == 400 and error_of(wrong_field)[0] == "no_files"

    # A browser form submitted with no file chosen: one empty part with an empty name.
    no_choice = sqlite_client.post("/api/v1/uploads", data={"files": (io.BytesIO(b""), "")},
                                   content_type="multipart/form-data")
    assert no_choice.status_code == 400 and error_of(no_choice)[0] == "no_files"

    json_body = sqlite_client.post("/api/v1/uploads", json={"files": ["a.jpg"]})
    assert json_body.status_code == 400

    assert session_ids(sqlite_app) == []  # no session was made for nothing
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_malformed_multipart_is_400_and_leaves_nothing(sqlite_app, sqlite_client, data_dir,
                                                       tmp_path):
    before = snapshot(tmp_path)
    response = sqlite_client.post(
        "/api/v1/uploads", data=b"--xyz\r\nno headers here at all",
        content_type="multipart/form-data; boundary=xyz")
    assert response.status_code == 400
    assert error_of(response)[0] == "upload_interrupted"
    assert session_ids(sqlite_app) == []
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_unknown_or_deleted_session_is_404_and_nothing_is_kept(app, client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    unknown = post_files(client, [("a.jpg", image_bytes())], session_id=4242)
    assert unknown.status_code == 404
    assert error_of(unknown)[0] == "not_found"

    gone = client.post("/api/v1/sessions", json={"name": "Gone soon"}).get_json()["session"]
    assert client.delete(f"/api/v1/sessions/{gone['id']}").status_code == 204
    deleted = post_files(client, [("a.jpg", image_bytes())], session_id=gone["id"])
    assert deleted.status_code == 404

    garbage = post_files(client, [("a.jpg", image_bytes())], session_id="seven")
    assert garbage.status_code == 400 and error_of(garbage)[0] == "invalid_id"

    with app.app_context():
        assert db.session.query(Upload).count() == 0
    assert session_ids(app) == []
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_disk_without_room_is_507_and_leaves_nothing(data_dir, tmp_path):
    app = build_app(data_dir, SCANNER_DISK_RESERVE_MB=str(10**9))  # a reserve nobody has
    client = api_client(app)
    before = snapshot(tmp_path)
    response = client.post("/api/v1/uploads",
                           data={"files": (io.BytesIO(image_bytes()), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 507
    assert error_of(response)[0] == "disk_space"
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_processing_that_crashes_marks_the_upload_failed_and_keeps_the_file(
        sqlite_app, sqlite_client, data_dir, monkeypatch, caplog):
    import logging

    from scanner_app.uploads import processing as upload_processing
    from scanner_app.uploads.job import FAILED_SENTENCE
    real = upload_processing.image_draft

    def explode(parts, handle, settings):
        if parts[-1] == "boom.jpg":
            raise RuntimeError("simulated decoder crash")
        return real(parts, handle, settings)

    monkeypatch.setattr(upload_processing, "image_draft", explode)
    caplog.set_level(logging.ERROR, logger="scanner.uploads")
    body = post_files(sqlite_client, [("boom.jpg", image_bytes(seed=1)),
                                      ("fine.jpg", image_bytes(seed=2))]).get_json()
    boom, fine = body["uploads"]
    assert boom["status"] == "failed"
    # A person reads a fixed sentence, never the exception's text ...
    assert boom["error"] == FAILED_SENTENCE
    assert "simulated" not in boom["error"] and "RuntimeError" not in boom["error"]
    assert sqlite_client.get(f"/api/v1/uploads/{boom['id']}").get_json()["upload"]["error"] == (
        FAILED_SENTENCE)
    # ... which, with its traceback, is in the log.
    logged = [r for r in caplog.records if r.exc_info and "simulated decoder crash" in str(
        r.exc_info[1])]
    assert logged and f"upload {boom['id']}" in logged[0].getMessage()
    assert fine["status"] == "done" and fine["valid_count"] == 1
    assert (upload_dir(data_dir, body["session_id"], boom["id"]) / "boom.jpg").exists()
    assert counters(sqlite_app, body["session_id"]) == {
        "files_count": 2, "captures_count": 1, "valid_count": 1, "invalid_count": 0}


def test_exif_time_without_offset_is_in_the_station_time_zone(data_dir):
    app = build_app(data_dir, SCANNER_TIMEZONE="Europe/Berlin")
    photo = image_bytes(taken="2024:01:15 12:00:00")
    body = post_files(api_client(app), [("a.jpg", photo)]).get_json()
    capture = captures_of(app, body["uploads"][0]["id"])[0]
    expected = datetime(2024, 1, 15, 11, 0, tzinfo=UTC)  # CET is UTC+1 in January
    assert capture["taken_at"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
