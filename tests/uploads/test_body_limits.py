"""The request body: too large (with and without Content-Length) and cut off mid-way, in the
app itself. test_live_server.py sends the same through a real HTTP server."""

from __future__ import annotations

import io

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from tests.conftest import build_app
from tests.support import dispose
from tests.uploads.conftest import error_of, session_ids
from tests.uploads.helpers import (
    assert_written_only_inside,
    image_bytes,
    multipart_body,
    snapshot,
)

MB = 1024 * 1024
BOUNDARY = "scannerTESTboundary"


class CountingStream(io.RawIOBase):
    """A request body that counts what the app reads, and may end early (a disconnect)."""

    def __init__(self, data: bytes, stop_after: int | None = None):
        self.data = data
        self.position = 0
        self.stop_after = len(data) if stop_after is None else stop_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        end = min(self.position + len(buffer), self.stop_after)
        chunk = self.data[self.position:end]
        buffer[: len(chunk)] = chunk
        self.position = end
        return len(chunk)


@pytest.fixture
def small_app(data_dir):
    """A station that takes at most 1 MB per request."""
    app = build_app(data_dir, SCANNER_MAX_UPLOAD_MB="1")
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        app.config["TEST_KEY"] = create_api_key("limits")
    yield app
    dispose(app)


def call(app, body_stream, content_length: int | None, chunked: bool = False,
         terminated: bool = False, method: str = "POST", path: str = "/api/v1/uploads",
         content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    """`terminated`: the server promises the input ends where the body does, as gunicorn
    does for every request (implied by `chunked`)."""
    builder = EnvironBuilder(path=path, method=method,
                             headers={"X-Api-Key": app.config["TEST_KEY"]})
    environ = builder.get_environ()
    environ["CONTENT_TYPE"] = content_type
    environ["wsgi.input"] = body_stream
    environ.pop("CONTENT_LENGTH", None)
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    if chunked or terminated:
        # What gunicorn promises for every body, other servers for the chunked ones they
        # de-chunk: the input ends where the body does.
        environ["wsgi.input_terminated"] = True
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    app_iter, status, headers = run_wsgi_app(app, environ)
    body = b"".join(app_iter)
    return int(status.split()[0]), body


def json_error(body: bytes) -> tuple[str, str]:
    class Response:
        def get_json(self):
            import json

            return json.loads(body)

    return error_of(Response())


def nothing_stored(app) -> None:
    assert session_ids(app) == []
    with app.app_context():
        assert db.session.query(Upload).count() == 0


def test_content_length_over_the_limit_is_413_before_reading(small_app, data_dir, tmp_path):
    before = snapshot(tmp_path)
    data = multipart_body([("big.jpg", b"\xff" * (2 * MB))])
    stream = CountingStream(data)
    status, body = call(small_app, stream, len(data))
    assert status == 413
    code, message = json_error(body)
    assert code == "too_large" and "1 MB" in message
    assert stream.position == 0  # not a byte of the body was read
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_chunked_body_over_the_limit_is_cut_off_while_streaming(small_app, data_dir, tmp_path):
    before = snapshot(tmp_path)
    data = multipart_body([("a.jpg", image_bytes()), ("big.jpg", b"\xff" * (3 * MB))])
    stream = CountingStream(data)
    status, body = call(small_app, stream, None, chunked=True)
    assert status == 413
    assert json_error(body)[0] == "too_large"
    assert stream.position <= 2 * MB  # stopped soon after the limit, not at the end
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)  # staged parts removed


def test_body_cut_off_mid_way_leaves_no_half_file(small_app, data_dir, tmp_path):
    before = snapshot(tmp_path)
    data = multipart_body([("a.jpg", image_bytes(seed=1)), ("b.jpg", b"\xab" * 500_000)])
    stream = CountingStream(data, stop_after=len(data) // 2)  # the client goes away
    status, body = call(small_app, stream, len(data))
    assert status == 400
    code, message = json_error(body)
    assert code == "upload_interrupted" and "nothing was kept" in message
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_body_within_the_limit_is_taken(small_app, data_dir):
    data = multipart_body([("a.jpg", image_bytes())], fields={"session_id": ""})
    status, body = call(small_app, CountingStream(data), None, chunked=True)
    assert status == 201, body


def test_parts_without_content_disposition_are_400(small_app, data_dir, tmp_path):
    before = snapshot(tmp_path)
    data = (f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
            .encode())
    status, body = call(small_app, CountingStream(data), len(data))
    assert status == 400
    assert json_error(body)[0] == "bad_multipart"
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)


def test_too_many_files_is_400_and_leaves_nothing(small_app, data_dir, tmp_path, monkeypatch):
    from scanner_app.uploads import intake as upload_intake
    assert upload_intake.MAX_FILES == 1000
    monkeypatch.setattr(upload_intake, "MAX_FILES", 20)  # the same check, 50 times faster
    before = snapshot(tmp_path)
    data = multipart_body([(f"{i}.txt", b"x") for i in range(21)])
    status, body = call(small_app, CountingStream(data), len(data))
    assert status == 400
    code, message = json_error(body)
    assert code == "too_many_files" and "at most 20 files" in message
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_of_exactly_the_limit_is_taken(small_app, data_dir, chunked):
    image = image_bytes()
    overhead = len(multipart_body([("exact.jpg", b"")]))
    data = multipart_body([("exact.jpg", image + b"\0" * (MB - overhead - len(image)))])
    assert len(data) == MB
    status, body = call(small_app, CountingStream(data), None if chunked else MB,
                        chunked=chunked, terminated=True)
    assert status == 201, body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_one_byte_over_the_limit_is_413(small_app, data_dir, tmp_path, chunked):
    before = snapshot(tmp_path)
    image = image_bytes()
    overhead = len(multipart_body([("exact.jpg", b"")]))
    data = multipart_body([("exact.jpg", image + b"\0" * (MB + 1 - overhead - len(image)))])
    assert len(data) == MB + 1
    stream = CountingStream(data)
    status, body = call(small_app, stream, None if chunked else MB + 1, chunked=chunked,
                        terminated=True)
    assert status == 413
    assert json_error(body)[0] == "too_large"
    if not chunked:
        assert stream.position == 0  # refused by the header alone
    nothing_stored(small_app)
    assert_written_only_inside(tmp_path, before, data_dir, None)
