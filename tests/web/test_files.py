"""The file and thumbnail routes serve only from inside the session's own directory."""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import add_capture, add_session, jpeg_bytes


@pytest.fixture
def two_sessions(web_app, data_dir):
    mine = add_session(web_app, "Mine")
    other = add_session(web_app, "Other")
    (data_dir / "secret.txt").write_text("station secret")
    (data_dir / "sessions" / str(other) / "private.txt").write_text("other session")
    return mine, other


def test_serves_a_file_inside_the_session(web_app, browser, two_sessions):
    mine, _other = two_sessions
    image = jpeg_bytes()
    add_capture(web_app, mine, "images/uploads/3/photo one.jpg", data=image)
    answer = browser.get(f"/sessions/{mine}/files/images/uploads/3/photo%20one.jpg")
    assert answer.status_code == 200
    assert answer.data == image
    assert answer.mimetype == "image/jpeg"
    record = browser.get(f"/sessions/{mine}/files/metadata/session.json")
    # Not an image: a download (tests/platform/test_stored_files.py), with the record in it.
    assert record.status_code == 200 and json.loads(record.data)["name"] == "Mine"
    assert record.mimetype == "application/octet-stream"


@pytest.mark.parametrize("relpath", [
    "../../secret.txt",
    "..%2F..%2Fsecret.txt",
    "images/../../../secret.txt",
    "%2E%2E/%2E%2E/secret.txt",
    "../{other}/private.txt",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "C:%5Cwindows%5Cwin.ini",
    "images/nothing-here.jpg",
])
def test_refuses_paths_outside_the_session(browser, two_sessions, relpath):
    mine, other = two_sessions
    answer = browser.get(f"/sessions/{mine}/files/" + relpath.format(other=other))
    if answer.status_code in (301, 308):  # merged slashes: must land inside the session again
        answer = browser.get(answer.headers["Location"])
    assert answer.status_code == 404
    assert b"That file is not in this session" in answer.data  # refused by the route itself
    assert b"station secret" not in answer.data and b"root:" not in answer.data
    assert b"other session" not in answer.data


def test_refuses_a_symlink_that_points_out(browser, two_sessions, data_dir):
    mine, _other = two_sessions
    link = data_dir / "sessions" / str(mine) / "images" / "escape.txt"
    link.symlink_to(data_dir / "secret.txt")
    answer = browser.get(f"/sessions/{mine}/files/images/escape.txt")
    assert answer.status_code == 404 and b"station secret" not in answer.data


def test_unknown_session_is_404(browser):
    answer = browser.get("/sessions/999/files/metadata/session.json")
    assert answer.status_code == 404 and b"There is no session 999" in answer.data


def test_thumbnail_then_fallback_to_the_image(web_app, browser, two_sessions):
    mine, _other = two_sessions
    thumb, image = jpeg_bytes((16, 12)), jpeg_bytes((64, 48), (200, 10, 10))
    with_thumb = add_capture(web_app, mine, "images/scans/1/f0.jpg", data=image, thumbnail=thumb)
    without = add_capture(web_app, mine, "images/scans/1/f1.jpg", data=image)

    answer = browser.get(f"/sessions/{mine}/thumbnails/{with_thumb}.jpg?src=images/scans/1/f0.jpg")
    assert answer.status_code == 200 and answer.data == thumb
    answer = browser.get(f"/sessions/{mine}/thumbnails/{without}.jpg?src=images/scans/1/f1.jpg")
    assert answer.status_code == 200 and answer.data == image
    assert browser.get(f"/sessions/{mine}/thumbnails/{without}.jpg").status_code == 404
    outside = browser.get(f"/sessions/{mine}/thumbnails/{without}.jpg?src=../../secret.txt")
    assert outside.status_code == 404 and b"station secret" not in outside.data
