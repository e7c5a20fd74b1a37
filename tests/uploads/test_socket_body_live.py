"""Uploads against a live gunicorn (our StationServer, with a short client idle timeout), where
the body is read straight from the socket (uploads/socket_body.py): a raw PUT byte-exact past
the buffers, the connection kept alive (and a pipelined request behind the body served), a
cut-off or stalled client leaves nothing, the size limit answers with the station's sentence,
a chunked body still goes through gunicorn's reader; a multipart POST likewise exact with a
request pipelined behind it."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path

import pytest

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from scanner_app.uploads.file_sink import FILL_BUFFER_BYTES, FILL_BUFFERS
from tests.conftest import build_app
from tests.runtime.procs import upgrade_and_key
from tests.support import Proc, free_port, process_env
from tests.uploads.helpers import multipart_body

SERVE = """
import sys
from scanner_app.runtime.web_server import bind_listener, serve
serve(bind_listener("127.0.0.1", int(sys.argv[1])), threads=2, ready_message="ready to serve",
      client_idle_seconds=float(sys.argv[2]))
"""
CLIENT_IDLE = 2.0
LIMIT_MB = 16


@pytest.fixture
def station(data_dir: Path, redis_server: str) -> Iterator[tuple[int, str, Path]]:
    key = upgrade_and_key(data_dir)
    port = free_port()
    server = Proc([sys.executable, "-c", SERVE, str(port), str(CLIENT_IDLE)],
                  process_env(data_dir, SCANNER_REDIS_URL=redis_server,
                              SCANNER_MAX_UPLOAD_MB=str(LIMIT_MB)))
    try:
        server.wait_line("ready to serve", timeout=60)
        yield port, key, data_dir
    finally:
        server.kill()


def put_head(port: int, key: str, length: int, name: str = "big.bin") -> bytes:
    return (f"PUT /api/v1/uploads?filename={name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Api-Key: {key}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def answer_of(sock: socket.socket, method: str = "PUT") -> tuple[int, dict, HTTPResponse]:
    response = HTTPResponse(sock, method=method)
    response.begin()
    raw = response.read()
    return response.status, (json.loads(raw) if raw else {}), response


def send_in_thread(sock: socket.socket, data: bytes) -> threading.Thread:
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def stored_bytes(data_dir: Path, answer: dict) -> bytes:
    upload = answer["uploads"][0]
    return (data_dir / "sessions" / str(answer["session_id"]) / "images" / "uploads"
            / str(upload["id"]) / upload["filename"]).read_bytes()


def nothing_kept(data_dir: Path) -> None:
    incoming = data_dir / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    app = build_app(data_dir)
    with app.app_context():
        assert db.session.query(Upload).count() == 0
        db.engine.dispose()


def test_body_past_the_buffers_is_exact_and_the_connection_serves_the_next_requests(station):
    port, key, data_dir = station
    body = os.urandom(FILL_BUFFERS * FILL_BUFFER_BYTES + 3 * FILL_BUFFER_BYTES // 2 + 7)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sender = send_in_thread(sock, put_head(port, key, len(body)) + body)
        status, answer, response = answer_of(sock)
        sender.join(30)
        assert status == 201, answer
        upload = answer["uploads"][0]
        assert upload["size"] == len(body)
        assert upload["sha256"] == hashlib.sha256(body).hexdigest()
        assert stored_bytes(data_dir, answer) == body
        assert not response.will_close
        # Kept alive: a second PUT on the same connection, and a GET pipelined right behind
        # its body (the body's end must be exactly where the reading stopped).
        second = os.urandom(1000)
        sock.sendall(put_head(port, key, len(second), "second.bin") + second
                     + f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        status, answer, _ = answer_of(sock)
        assert status == 201, answer
        assert answer["uploads"][0]["sha256"] == hashlib.sha256(second).hexdigest()
        status, health, _ = answer_of(sock, "GET")
        assert status in (200, 503) and "checks" in health, health


def test_client_that_closes_early_leaves_nothing(station):
    port, key, data_dir = station
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(put_head(port, key, 5 * FILL_BUFFER_BYTES) + os.urandom(FILL_BUFFER_BYTES))
        sock.shutdown(socket.SHUT_WR)  # the body ends early
        status, answer, _ = answer_of(sock)
    assert status == 400
    assert answer["error"]["code"] == "upload_interrupted", answer
    nothing_kept(data_dir)


def test_client_that_stalls_is_cut_at_the_idle_timeout_and_leaves_nothing(station):
    port, key, data_dir = station
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(put_head(port, key, 5 * FILL_BUFFER_BYTES) + os.urandom(300_000))
        started = time.monotonic()
        status, answer, _ = answer_of(sock)  # the connection stays open, nothing more sent
        waited = time.monotonic() - started
    assert status == 400
    assert answer["error"]["code"] == "upload_interrupted", answer
    assert CLIENT_IDLE * 0.9 <= waited < CLIENT_IDLE + 15, waited
    nothing_kept(data_dir)


def test_over_the_limit_is_refused_with_the_sentence_before_the_body(station):
    port, key, data_dir = station
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(put_head(port, key, LIMIT_MB * 1024 * 1024 + 1))  # and no body at all
        status, answer, _ = answer_of(sock)
    assert status == 413
    assert answer["error"]["code"] == "too_large"
    assert answer["error"]["message"] == (
        f"The upload is larger than the {LIMIT_MB} MB this station accepts in one request. "
        "Send fewer or smaller files, or raise SCANNER_MAX_UPLOAD_MB.")
    nothing_kept(data_dir)


def test_chunked_body_goes_through_the_wsgi_reader(station):
    port, key, data_dir = station
    body = os.urandom(2 * FILL_BUFFER_BYTES + 5)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("PUT", "/api/v1/uploads?filename=chunked.bin",
                     body=iter([body[:70_000], body[70_000:]]), encode_chunked=True,
                     headers={"X-Api-Key": key, "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 201, answer
    assert answer["uploads"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert stored_bytes(data_dir, answer) == body


def test_multipart_post_is_exact_and_a_pipelined_request_behind_it_is_served(station):
    port, key, data_dir = station
    data = os.urandom(3 * 1024 * 1024 + 333)
    body = multipart_body([("photos.bin", data)], "liveSocketBoundary")
    head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Api-Key: {key}\r\n"
            "Content-Type: multipart/form-data; boundary=liveSocketBoundary\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sender = send_in_thread(sock, head + body + f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:"
                                f"{port}\r\n\r\n".encode())
        status, answer, _ = answer_of(sock, "POST")
        assert status == 201, answer
        assert answer["uploads"][0]["sha256"] == hashlib.sha256(data).hexdigest()
        assert stored_bytes(data_dir, answer) == data
        status, health, _ = answer_of(sock, "GET")
        sender.join(30)
    assert status in (200, 503) and "checks" in health, health
