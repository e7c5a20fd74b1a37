"""Uploads against a live station: `scanner web` (gunicorn, one gthread worker) and `scanner
worker` as real processes, clients as threads on real sockets. The server has no body limit of
its own: every 413 is the station's JSON error body."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from scanner_app.models import Upload
from scanner_app.platform.extensions import db
from tests.conftest import build_app
from tests.support import Proc, cli, dispose, free_port, process_env, stop_processes, wait_until
from tests.uploads.conftest import counted, counters, session_ids
from tests.uploads.helpers import (
    assert_written_only_inside,
    image_bytes,
    multipart_body,
    snapshot,
)

BOUNDARY = "scannerTESTboundary"
CONCURRENT_REQUESTS = 60
MB = 1024 * 1024


@dataclass
class LiveStation:
    app: object
    host: str
    port: int
    key: str
    web: Proc
    workers: list[Proc]

    def post(self, body, chunked: bool = False, timeout: float = 60) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"X-Api-Key": self.key,
                   "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        try:
            conn.request("POST", "/api/v1/uploads", body=body, headers=headers,
                         encode_chunked=chunked)
            response = conn.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, {"raw": raw.decode(errors="replace")}
        finally:
            conn.close()

    def post_raw(self, pieces: Iterable[bytes], content_length: int | None = None,
                 timeout: float = 60) -> tuple[int, dict]:
        """POST on a raw socket, the body sent from a thread while this one reads the answer,
        as a browser does: an early answer (413) is read even when the server stops reading
        the body and closes. Without `content_length` the body is sent chunked."""
        length = (f"Content-Length: {content_length}" if content_length is not None
                  else "Transfer-Encoding: chunked")
        head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"X-Api-Key: {self.key}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length}\r\n\r\n")
        sock = socket.create_connection((self.host, self.port), timeout=timeout)

        def send() -> None:
            try:
                sock.sendall(head.encode())
                for piece in pieces:
                    if content_length is None:
                        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                    sock.sendall(piece)
                if content_length is None:
                    sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server answered early and closed: the answer is what counts

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            return response.status, json.loads(response.read())
        finally:
            sock.close()
            sender.join(timeout)

    def processing(self) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(Upload)
                                     .where(Upload.status == "processing"))


def start_station(data_dir: Path, database_url: str | None, redis_url: str,
                  workers: int = 1, **env: str) -> LiveStation:
    app = build_app(data_dir, database_url, SCANNER_REDIS_URL=redis_url, **env)
    from scanner_app.accounts.service import create_api_key

    with app.app_context():
        key = create_api_key("live")
    extra = {"SCANNER_REDIS_URL": redis_url, **env}
    if database_url:
        extra["SCANNER_DATABASE_URL"] = database_url
    proc_env = process_env(data_dir, **extra)
    port = free_port()
    web = Proc(cli("web", "--port", str(port), "--threads", "8"), proc_env)
    running = [Proc(cli("worker", "--queues", "uploads", "--name", f"uploads-{n}-{port}"),
                    proc_env) for n in range(workers)]
    station = LiveStation(app, "127.0.0.1", port, key, web, running)
    web.wait_line(f"http://127.0.0.1:{port}/", timeout=30)

    def answers() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            # 503 answers too: /healthz names the scan worker this station runs without.
            return conn.getresponse().status in (200, 503)
        except OSError:
            return False

    wait_until(answers, 30, "the web server to answer")
    return station


def house_error(answer: dict) -> tuple[str, str]:
    """The station's one error body, {"error": {"code", "message"}}, with a sentence."""
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}, answer
    assert answer["error"]["message"].endswith("."), answer
    return answer["error"]["code"], answer["error"]["message"]


def pieces_of(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def stop_station(station: LiveStation) -> None:
    stop_processes(*(proc.popen for proc in (*station.workers, station.web)))
    dispose(station.app)


def test_concurrent_uploads_on_a_new_day_make_one_session_and_count_every_file_once(
        data_dir, database_url, redis_server, redis_conn, tmp_path):
    """60 requests at once, no session yet today: each sends its own photo and the same
    shared photo. One auto session; every own photo counted once; the shared one stored
    once, the other 59 reported as duplicates of it. Two workers process the jobs at the
    same time, bumping the same session's counters."""
    station = start_station(data_dir, database_url, redis_server, workers=2)
    try:
        before = snapshot(tmp_path)
        shared = image_bytes("PNG", (40, 30), seed=4000)
        bodies = [multipart_body([(f"own-{i}.png", image_bytes("PNG", (40, 30), seed=i + 1)),
                                  ("shared.png", shared)], BOUNDARY)
                  for i in range(CONCURRENT_REQUESTS)]
        start = threading.Barrier(CONCURRENT_REQUESTS)

        def send(body: bytes):
            start.wait(30)  # all at once
            return station.post(body)

        with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
            answers = list(pool.map(send, bodies))

        assert [status for status, _ in answers] == [201] * CONCURRENT_REQUESTS, answers[:3]
        session_id = answers[0][1]["session_id"]
        assert {body["session_id"] for _, body in answers} == {session_id}
        assert session_ids(station.app) == [session_id]  # exactly one auto session

        wait_until(lambda: station.processing() == 0, 90, "every upload to be processed")
        expected = {"files_count": CONCURRENT_REQUESTS + 1,
                    "captures_count": CONCURRENT_REQUESTS + 1,
                    "valid_count": CONCURRENT_REQUESTS + 1, "invalid_count": 0}
        assert counters(station.app, session_id) == expected
        assert counted(station.app, session_id) == expected

        shared_rows = [u for _, body in answers for u in body["uploads"]
                       if u["filename"] == "shared.png"]
        originals = [u for u in shared_rows if u["duplicate_of"] is None]
        assert len(originals) == 1
        duplicates = [u for u in shared_rows if u["duplicate_of"] is not None]
        assert len(duplicates) == CONCURRENT_REQUESTS - 1
        assert {u["duplicate_of"] for u in duplicates} == {originals[0]["id"]}
        assert all(u["error"] is None
                   and u["note"] == f"Same file as upload {originals[0]['id']}; stored once."
                   for u in duplicates)
        assert_written_only_inside(tmp_path, before, data_dir, session_id)
    finally:
        stop_station(station)


def test_live_limits_interrupted_body_and_then_a_good_upload(data_dir, redis_server,
                                                             redis_conn, tmp_path):
    station = start_station(data_dir, None, redis_server, SCANNER_MAX_UPLOAD_MB="1")
    try:
        before = snapshot(tmp_path)
        # 1. Content-Length over the limit: refused after the headers alone.
        conn = http.client.HTTPConnection(station.host, station.port, timeout=30)
        conn.putrequest("POST", "/api/v1/uploads")
        conn.putheader("X-Api-Key", station.key)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Content-Length", str(50 * MB))
        conn.endheaders()
        response = conn.getresponse()  # no body was sent at all
        assert response.status == 413
        assert response.getheader("Content-Type") == "application/json"
        code, message = house_error(json.loads(response.read()))
        assert code == "too_large" and "1 MB" in message and "SCANNER_MAX_UPLOAD_MB" in message
        conn.close()

        # 2. A chunked body (no Content-Length) that grows past the limit.
        big = multipart_body([("big.jpg", b"\xff" * (2 * MB))], BOUNDARY)
        status, answer = station.post_raw(pieces_of(big))
        assert status == 413
        assert house_error(answer)[0] == "too_large"

        # 3. Half a body, then the client goes away.
        body = multipart_body([("half.jpg", image_bytes(seed=1)),
                               ("rest.jpg", b"\xab" * 400_000)], BOUNDARY)
        with socket.create_connection((station.host, station.port), timeout=10) as sock:
            sock.sendall(
                f"POST /api/v1/uploads HTTP/1.1\r\nHost: {station.host}\r\n"
                f"X-Api-Key: {station.key}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])

        # 4. The station is fine, and only the good upload is counted.
        status, answer = station.post(multipart_body([("good.jpg", image_bytes(seed=2))],
                                                     BOUNDARY))
        assert status == 201, answer
        session_id = answer["session_id"]
        wait_until(lambda: station.processing() == 0, 30, "the good upload to be processed")
        assert session_ids(station.app) == [session_id]
        expected = {"files_count": 1, "captures_count": 1, "valid_count": 1, "invalid_count": 0}
        assert counters(station.app, session_id) == expected == counted(station.app,
                                                                         session_id)
        with station.app.app_context():
            assert [u.filename for u in db.session.scalars(select(Upload))] == ["good.jpg"]
        assert_written_only_inside(tmp_path, before, data_dir, session_id)
    finally:
        stop_station(station)


def exact_and_one_over() -> tuple[bytes, bytes, int]:
    """Multipart bodies of exactly 1 MiB and of 1 MiB + 1 byte, and the exact one's file size."""
    image = image_bytes(seed=5)
    overhead = len(multipart_body([("exact.jpg", b"")], BOUNDARY))
    exact_file = image + b"\0" * (MB - overhead - len(image))
    exact = multipart_body([("exact.jpg", exact_file)], BOUNDARY)
    over = multipart_body([("1byte.jpg", exact_file + b"\0")], BOUNDARY)
    assert (len(exact), len(over)) == (MB, MB + 1)
    return exact, over, len(exact_file)


def test_live_one_byte_over_the_limit_is_413(data_dir, redis_server, redis_conn, tmp_path):
    """SCANNER_MAX_UPLOAD_MB=1: a request body of 1 MiB + 1 byte is refused with the station's
    413, with Content-Length and chunked alike, and leaves nothing behind."""
    station = start_station(data_dir, None, redis_server, SCANNER_MAX_UPLOAD_MB="1")
    try:
        before = snapshot(tmp_path)
        _, over, _ = exact_and_one_over()
        for content_length in (len(over), None):
            status, answer = station.post_raw(pieces_of(over), content_length=content_length)
            assert status == 413
            assert house_error(answer)[0] == "too_large"
        assert session_ids(station.app) == []
        assert_written_only_inside(tmp_path, before, data_dir, None)
    finally:
        stop_station(station)


def test_live_body_exactly_at_the_limit_is_taken(data_dir, redis_server, redis_conn,
                                                 tmp_path):
    """SCANNER_MAX_UPLOAD_MB=1: a request body of exactly 1 MiB is taken ("larger request
    bodies get 413"), with Content-Length and chunked alike: the server adds no limit."""
    station = start_station(data_dir, None, redis_server, SCANNER_MAX_UPLOAD_MB="1")
    try:
        before = snapshot(tmp_path)
        exact, _, file_size = exact_and_one_over()
        taken = []
        for content_length in (len(exact), None):
            status, answer = station.post_raw(pieces_of(exact), content_length=content_length)
            assert status == 201, answer
            [upload] = answer["uploads"]
            assert (upload["filename"], upload["size"]) == ("exact.jpg", file_size)
            taken.append(upload["id"])
        session_id = answer["session_id"]
        wait_until(lambda: station.processing() == 0, 30, "both uploads to be processed")
        with station.app.app_context():
            assert sorted(u.id for u in db.session.scalars(select(Upload))) == taken
        assert_written_only_inside(tmp_path, before, data_dir, session_id)
    finally:
        stop_station(station)
