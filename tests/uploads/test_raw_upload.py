"""PUT /api/v1/uploads?filename=NAME[&session_id=N]: one file as the raw request body (issue
15, uploads at disk speed). The same answer as the multipart POST; the stored bytes and their
sha256 equal what was sent; a body over the limit is 413 with nothing left; a bad name or
session is a 400/404 sentence."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from tests.support import dispose
from tests.uploads.conftest import counted, counters, error_of, session_ids
from tests.uploads.helpers import assert_written_only_inside, image_bytes, snapshot

MB = 1024 * 1024


def put_file(client, name: str | None, data: bytes, session_id=None, **headers):
    query = {}
    if name is not None:
        query["filename"] = name
    if session_id is not None:
        query["session_id"] = str(session_id)
    return client.put("/api/v1/uploads", query_string=query, data=data,
                      content_type="application/octet-stream", headers=headers)


def stored_path(data_dir: Path, body: dict) -> Path:
    upload = body["uploads"][0]
    return (data_dir / "sessions" / str(body["session_id"]) / "images" / "uploads"
            / str(upload["id"]))


def test_a_put_body_is_stored_byte_for_byte_and_processed(app, client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    # Several MB of an image plus random bytes: more than one read of the body.
    data = image_bytes("PNG", (64, 48))
    noise = os.urandom(3 * MB + 12345)
    response = put_file(client, "front.png", data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    (upload,) = body["uploads"]
    assert (upload["filename"], upload["size"], upload["sha256"]) == (
        "front.png", len(data), hashlib.sha256(data).hexdigest())
    assert (stored_path(data_dir, body) / "front.png").read_bytes() == data
    # Processed like a POSTed file (no queue here: in the request).
    assert (upload["status"], upload["valid_count"]) == ("done", 1)

    big = put_file(client, "noise.bin", noise, session_id=body["session_id"])
    assert big.status_code == 201
    big_body = big.get_json()
    (big_upload,) = big_body["uploads"]
    assert big_upload["sha256"] == hashlib.sha256(noise).hexdigest()
    assert big_upload["size"] == len(noise)
    assert (stored_path(data_dir, big_body) / "noise.bin").read_bytes() == noise
    assert big_upload["status"] == "done" and big_upload["invalid_count"] == 1

    # The same bytes again: a duplicate, as with POST.
    again = put_file(client, "copy.png", data).get_json()["uploads"][0]
    assert again["duplicate_of"] == upload["id"]
    session_id = body["session_id"]
    assert counters(app, session_id) == {"files_count": 2, "captures_count": 2,
                                         "valid_count": 1, "invalid_count": 1}
    assert counted(app, session_id) == counters(app, session_id)
    assert_written_only_inside(tmp_path, before, data_dir, session_id)


def test_a_put_answers_like_the_post(client):
    data = image_bytes(seed=9)
    put = put_file(client, "a.jpg", data).get_json()
    post = client.post("/api/v1/uploads", data={"files": [(__import__("io").BytesIO(
        image_bytes(seed=10)), "b.jpg")]}, content_type="multipart/form-data").get_json()
    assert set(put) == set(post) == {"session_id", "uploads"}
    assert set(put["uploads"][0]) == set(post["uploads"][0])


@pytest.mark.parametrize("name, code", [
    (None, "no_filename"), ("", "no_filename"), ("   ", "no_filename"),
    ("../etc/passwd", "bad_filename"), ("dir\\photo.jpg", "bad_filename"),
    ("a\x00.jpg", "bad_filename"), ("..", "bad_filename"), ("\u202e", "bad_filename"),
    ("x" * 1100 + ".jpg", "bad_filename"),
])
def test_a_bad_filename_is_a_400_sentence_with_nothing_kept(app, client, data_dir, tmp_path,
                                                             name, code):
    before = snapshot(tmp_path)
    response = put_file(client, name, image_bytes())
    assert response.status_code == 400
    got_code, message = error_of(response)
    assert got_code == code
    assert message.endswith(".") and "filename" in message.lower()
    assert session_ids(app) == []
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_an_unknown_or_bad_session_is_refused_before_the_body(app, client, data_dir, tmp_path):
    before = snapshot(tmp_path)
    response = put_file(client, "a.jpg", image_bytes(), session_id=424242)
    assert response.status_code == 404
    assert "424242" in error_of(response)[1]
    response = put_file(client, "a.jpg", image_bytes(), session_id="abc")
    assert response.status_code == 400 and error_of(response)[0] == "invalid_id"
    assert session_ids(app) == []
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_an_empty_put_body_is_an_empty_file_upload(client):
    response = put_file(client, "empty.jpg", b"")
    assert response.status_code == 201
    (upload,) = response.get_json()["uploads"]
    assert upload["size"] == 0 and upload["invalid_count"] == 1


@pytest.fixture
def small_app(data_dir):
    """A station that takes at most 1 MB per request."""
    from tests.conftest import build_app

    app = build_app(data_dir, SCANNER_MAX_UPLOAD_MB="1")
    yield app
    dispose(app)


def _small_client(small_app):
    from tests.support import api_client

    return api_client(small_app, "raw-limits")


def test_over_the_limit_is_413_with_nothing_left_on_disk(small_app, data_dir, tmp_path):
    from tests.uploads.test_body_limits import CountingStream, call

    client = _small_client(small_app)
    before = snapshot(tmp_path)
    response = put_file(client, "big.bin", b"\xff" * (MB + 1))
    assert response.status_code == 413
    code, message = error_of(response)
    assert code == "too_large" and "1 MB" in message
    # Exactly at the limit is taken.
    assert put_file(client, "edge.bin", b"\xfe" * MB).status_code == 201
    edge_session = session_ids(small_app)
    with small_app.app_context():
        assert db.session.query(Upload).count() == 1
    # Without Content-Length (chunked): cut off while streaming, staged bytes removed.
    small_app.config["TEST_KEY"] = _key(small_app)
    stream = CountingStream(b"\xfd" * (3 * MB))
    status, _ = call(small_app, stream, None, chunked=True, method="PUT",
                     path="/api/v1/uploads?filename=chunked.bin",
                     content_type="application/octet-stream")
    assert status == 413
    assert stream.position <= 2 * MB + 1  # stopped soon after the limit, not at the end
    with small_app.app_context():
        assert db.session.query(Upload).count() == 1
    assert_written_only_inside(tmp_path, before, data_dir, edge_session[0])


def test_a_put_cut_off_mid_body_keeps_nothing(small_app, data_dir, tmp_path):
    from tests.uploads.test_body_limits import CountingStream, call

    small_app.config["TEST_KEY"] = _key(small_app)
    before = snapshot(tmp_path)
    stream = CountingStream(b"\xfc" * 500_000, stop_after=200_000)
    status, body = call(small_app, stream, 500_000, method="PUT",
                        path="/api/v1/uploads?filename=cut.bin",
                        content_type="application/octet-stream")
    assert status == 400 and b"upload_interrupted" in body
    assert session_ids(small_app) == []
    assert_written_only_inside(tmp_path, before, data_dir, None)


def _key(app) -> str:
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        return create_api_key("raw-limits-wsgi")


def test_live_put_through_gunicorn_keeps_the_connection_usable(data_dir, redis_server,
                                                               redis_conn, tmp_path):
    """`scanner web` (gunicorn) and an uploads worker: a PUT body read straight from the
    server's stream is stored byte for byte, the same kept-alive connection serves the next
    request, a PUT cut off mid-body keeps nothing, and a body over the limit is 413."""
    import http.client
    import json
    import socket

    from tests.support import wait_until
    from tests.uploads.test_live_server import start_station, stop_station

    station = start_station(data_dir, None, redis_server, SCANNER_MAX_UPLOAD_MB="8")
    try:
        before = snapshot(tmp_path)
        data = image_bytes("PNG", (64, 48), seed=3) + os.urandom(5 * MB)
        conn = http.client.HTTPConnection(station.host, station.port, timeout=60)
        conn.request("PUT", "/api/v1/uploads?filename=big.png", body=data,
                     headers={"X-Api-Key": station.key,
                              "Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 201, body
        (upload,) = body["uploads"]
        assert upload["sha256"] == hashlib.sha256(data).hexdigest()
        assert (stored_path(data_dir, body) / "big.png").read_bytes() == data
        conn.request("GET", f"/api/v1/uploads/{upload['id']}",
                     headers={"X-Api-Key": station.key})  # the same connection
        again = conn.getresponse()
        assert again.status == 200 and json.loads(again.read())["upload"]["id"] == upload["id"]
        conn.close()

        with socket.create_connection((station.host, station.port), timeout=10) as sock:
            sock.sendall(f"PUT /api/v1/uploads?filename=cut.bin HTTP/1.1\r\n"
                         f"Host: {station.host}\r\nX-Api-Key: {station.key}\r\n"
                         f"Content-Length: {2 * MB}\r\n\r\n".encode() + b"\x01" * MB)
        conn = http.client.HTTPConnection(station.host, station.port, timeout=60)
        conn.putrequest("PUT", "/api/v1/uploads?filename=over.bin")
        conn.putheader("X-Api-Key", station.key)
        conn.putheader("Content-Length", str(8 * MB + 1))
        conn.endheaders()  # refused on the headers alone: no body is sent
        response = conn.getresponse()
        assert response.status == 413 and b"too_large" in response.read()
        conn.close()
        wait_until(lambda: station.processing() == 0, 30, "the upload to be processed")
        with station.app.app_context():
            assert [u.filename for u in db.session.query(Upload)] == ["big.png"]
        assert_written_only_inside(tmp_path, before, data_dir, body["session_id"])
    finally:
        stop_station(station)
